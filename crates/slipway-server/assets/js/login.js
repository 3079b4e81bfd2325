// The login page: the API token printed when the server first started (or made with
// `slipway token create`), checked against the server before it is kept.
import { ApiError, setToken, whoami } from './api.js';
import { h } from './dom.js';

/** Shows the login form in `el`; calls done() once a valid token is stored. */
export function mount(el, { message, done }) {
  document.title = 'Sign in · Slipway';
  const input = h('input', {
    id: 'login-token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false',
    placeholder: 'slw_…', 'data-testid': 'login-token',
  });
  const error = h('p', { class: 'banner error', role: 'alert', 'data-testid': 'login-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'login-submit' }, 'Sign in');
  const form = h('form', { class: 'panel-body login-form', 'data-testid': 'login-form' },
    message ? h('p', { class: 'banner warn', 'data-testid': 'login-message' }, message) : null,
    h('p', {}, 'The API token was printed once, with a ready link, when this server first started. ',
      'Make another on the server machine with ', h('code', {}, 'slipway token create NAME'), '.'),
    h('label', { for: 'login-token' }, 'API token'),
    input,
    error,
    h('div', { class: 'dialog-actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    submit.disabled = true;
    error.hidden = true;
    try {
      await whoami(t);
      setToken(t);
      done();
    } catch (err) {
      error.textContent = err instanceof ApiError && err.code === 401
        ? 'This token is not valid: it was mistyped or revoked.'
        : `The server could not check the token: ${err.message}`;
      error.hidden = false;
      input.select();
    } finally {
      submit.disabled = false;
    }
  });
  el.append(h('section', { class: 'panel login', 'data-testid': 'login-page' },
    h('div', { class: 'panel-head' }, h('h1', {}, 'Sign in to Slipway')), form));
  input.focus();
  return null;
}
