// Client-side routing over History API paths under /ui/; the namespace (`?ns=`) goes along.
import { keep } from './namespace.js';

const listeners = [];

export function onNavigate(fn) { listeners.push(fn); }

/** Goes to a /ui/ path without reloading. */
export function navigate(url, { replace = false } = {}) {
  url = keep(url);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  for (const fn of listeners) fn();
}

/** Updates the query string in place (filters), without re-rendering the page. */
export function setQuery(params) {
  const u = new URL(location.href);
  for (const [k, v] of Object.entries(params)) {
    if (v === '' || v === null || v === undefined) u.searchParams.delete(k);
    else u.searchParams.set(k, v);
  }
  history.replaceState(null, '', u.pathname + u.search);
}

/** Sends clicks on in-app links through the router. */
export function interceptLinks(root) {
  root.addEventListener('click', (e) => {
    const a = e.target.closest?.('a[href]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith('/ui')) return;
    e.preventDefault();
    navigate(url.pathname + url.search + url.hash);
  });
}
