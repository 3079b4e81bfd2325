// The namespace the UI shows, kept in the URL as `?ns=` (absent: `default`), and the selector in
// the top bar that lists the server's namespaces (GET /api/v1/namespaces, a NamespaceList).

export const DEFAULT_NS = 'default';

/** The namespace of the current page. */
export function current() {
  return new URLSearchParams(location.search).get('ns') || DEFAULT_NS;
}

/** A /ui/ URL carrying the current namespace, unless it names one itself. */
export function keep(url) {
  const u = new URL(url, location.href);
  const ns = current();
  if (u.pathname.startsWith('/ui') && !u.searchParams.has('ns') && ns !== DEFAULT_NS) u.searchParams.set('ns', ns);
  return u.pathname + u.search + u.hash;
}

/** Tekton's collection base for the current namespace. */
export function tektonBase(group = 'tekton.dev/v1') {
  return `/apis/${group}/namespaces/${encodeURIComponent(current())}`;
}

/** A run's own endpoints (`logs`, `cancel`, ...) in the current namespace. */
export function runBase(name) {
  return `/api/v1/namespaces/${encodeURIComponent(current())}/runs/${encodeURIComponent(name)}`;
}

/**
 * Fills the top bar's <select> with the server's namespaces and shows the current one; choosing
 * another goes to that namespace's list of the same section (a run or an object belongs to one
 * namespace, so its page does not carry over).
 */
export async function setupSelector(select, { list, go }) {
  const names = new Set([DEFAULT_NS, current()]);
  try {
    for (const it of (await list())?.items || []) if (it?.metadata?.name) names.add(it.metadata.name);
  } catch { /* the list is a convenience; the current namespace still shows */ }
  select.replaceChildren(...[...names].sort().map((n) => new Option(n, n)));
  select.value = current();
  if (select.dataset.ready) return;
  select.dataset.ready = '1';
  select.addEventListener('change', () => {
    const section = location.pathname.startsWith('/ui/resources') ? '/ui/resources' : '/ui/';
    go(`${section}?ns=${encodeURIComponent(select.value)}`);
  });
}
