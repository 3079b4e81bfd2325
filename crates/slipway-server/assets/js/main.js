// Entry point: routes /ui/ paths to pages. Each page is mount(container, params) → cleanup.
import { interceptLinks, navigate, onNavigate } from './router.js';
import { askToken, token, runsApi } from './api.js';
import { setupSelector } from './namespace.js';
import { h } from './dom.js';
import * as runs from './runs.js';
import * as run from './run.js';
import * as resources from './resources.js';

const routes = [
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
const main = document.getElementById('main');

const nsSelect = document.getElementById('namespace-select');

function render() {
  setupSelector(nsSelect, { list: runsApi.namespaces, go: navigate });
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  main.replaceChildren();
  const path = location.pathname;
  const route = routes.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.toggleAttribute('aria-current', false);
    if (route && a.dataset.nav === route[2]) a.setAttribute('aria-current', 'page');
  }
  if (!route) {
    document.title = 'Not found · Slipway';
    main.append(h('div', { class: 'panel empty', 'data-testid': 'not-found' },
      h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '/ui/' }, 'Back to runs'))));
    return;
  }
  try {
    cleanup = route[1](main, path.match(route[0]));
  } catch (e) {
    main.append(h('div', { class: 'banner error' }, `This page failed: ${e.message}`));
    console.error(e);
  }
}

interceptLinks(document.body);
onNavigate(() => { render(); main.focus({ preventScroll: true }); window.scrollTo(0, 0); });
window.addEventListener('popstate', render);
const tokenButton = document.getElementById('token-button');
tokenButton.hidden = !token();
tokenButton.addEventListener('click', () => askToken().then((ok) => ok && render()));
render();
