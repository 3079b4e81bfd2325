// Entry point: routes /ui/ paths to pages. Each page is mount(container, params) → cleanup.
import { interceptLinks, navigate, onNavigate } from './router.js';
import { clearToken, onSignedOut, runsApi, setToken, token, whoami } from './api.js';
import { setupSelector } from './namespace.js';
import { h } from './dom.js';
import * as login from './login.js';
import * as runs from './runs.js';
import * as run from './run.js';
import * as resources from './resources.js';
import * as prewarm from './prewarm.js';

const routes = [
  [/^\/ui\/prewarm\/?$/, (el) => prewarm.mountList(el), 'prewarm'],
  [/^\/ui\/prewarm\/([^/]+)\/?$/, (el, m) => prewarm.mountJob(el, decodeURIComponent(m[1])), 'prewarm'],
  [/^\/ui\/?$/, runs.mount, 'runs'],
  [/^\/ui\/runs\/?$/, runs.mount, 'runs'],
  [/^\/ui\/runs\/([^/]+)\/?$/, (el, m) => run.mount(el, decodeURIComponent(m[1])), 'runs'],
  [/^\/ui\/resources\/?$/, (el) => resources.mountList(el), 'resources'],
  [/^\/ui\/resources\/new\/?$/, (el) => resources.mountEditor(el, null, null), 'resources'],
  [/^\/ui\/resources\/(tasks|pipelines|stepactions)\/?$/, (el, m) => resources.mountList(el, m[1]), 'resources'],
  [/^\/ui\/resources\/(tasks|pipelines|stepactions)\/([^/]+)\/?$/,
    (el, m) => resources.mountEditor(el, m[1], decodeURIComponent(m[2])), 'resources'],
];

let cleanup = null;
let loginShown = false;
const main = document.getElementById('main');
const nsSelect = document.getElementById('namespace-select');

// Each page draws into its own box, so that a page still finishing a request after the login
// page replaced it draws into nothing.
function freshView() {
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  const view = h('div', { class: 'view' });
  main.replaceChildren(view);
  return view;
}

function render() {
  loginShown = false;
  setupSelector(nsSelect, { list: runsApi.namespaces, go: navigate });
  const view = freshView();
  const path = location.pathname;
  const route = routes.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.toggleAttribute('aria-current', false);
    if (route && a.dataset.nav === route[2]) a.setAttribute('aria-current', 'page');
  }
  if (!route) {
    document.title = 'Not found · Slipway';
    view.append(h('div', { class: 'panel empty', 'data-testid': 'not-found' },
      h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '/ui/' }, 'Back to runs'))));
    return;
  }
  try {
    cleanup = route[1](view, path.match(route[0]));
  } catch (e) {
    view.append(h('div', { class: 'banner error' }, `This page failed: ${e.message}`));
    console.error(e);
  }
}

interceptLinks(document.body);
onNavigate(() => { render(); main.focus({ preventScroll: true }); window.scrollTo(0, 0); });
window.addEventListener('popstate', render);
const who = document.getElementById('who');
const logout = document.getElementById('logout');

/** Shows who is signed in, and the logout button when a token is kept. */
async function showWho() {
  logout.hidden = !token();
  who.textContent = '';
  try {
    const me = await whoami();
    who.textContent = me.auth === 'off' ? 'no sign-in (--no-auth)' : `${me.name} (${me.scope})`;
  } catch { /* shown by the login page */ }
}

function showLogin(message) {
  if (loginShown) return;
  loginShown = true;
  document.title = 'Sign in · Slipway';
  logout.hidden = !token();
  who.textContent = '';
  login.mount(freshView(), { message, done: () => { render(); showWho(); } });
}

logout.addEventListener('click', () => {
  clearToken();
  showLogin('Signed out. The token is no longer kept in this browser.');
});
onSignedOut(showLogin);

// The link printed at a first start carries the token after `#token=`: keep it and take it out
// of the address bar (and so of the history) at once.
function tokenFromUrl() {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return false;
  setToken(decodeURIComponent(m[1]));
  history.replaceState(history.state, '', location.pathname + location.search);
  return true;
}
window.addEventListener('hashchange', () => { if (tokenFromUrl()) { render(); showWho(); } });
tokenFromUrl();
render();
showWho();
