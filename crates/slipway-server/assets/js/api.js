// The HTTP API: JSON and YAML requests, Kubernetes Status errors, bearer tokens, and Server-Sent
// Events read through fetch (EventSource cannot send an Authorization header, and a token in a
// URL would end up in logs and history).

import { tektonBase, runBase } from './namespace.js';

const TOKEN_KEY = 'slipway.token';
// In the namespace of the page (namespace.js), read at each call.
export const RESOURCE_BASE = {
  get tasks() { return `${tektonBase()}/tasks`; },
  get pipelines() { return `${tektonBase()}/pipelines`; },
  get stepactions() { return `${tektonBase('tekton.dev/v1beta1')}/stepactions`; },
};

export class ApiError extends Error {
  constructor(code, status, text) {
    super(status?.message || text || `HTTP ${code}`);
    this.code = code;
    this.reason = status?.reason || '';
    this.diagnostics = status?.diagnostics || status?.details?.diagnostics || [];
    this.status = status;
  }
  // An endpoint this server lacks (not a missing object): a 404 for the path itself, or a 405.
  get missing() { return this.code === 405 || (this.code === 404 && this.status?.details?.kind === 'route'); }
}

// The token is kept in localStorage rather than sessionStorage: runs are opened in new tabs
// (middle-click on a run), which sessionStorage would each sign out, and a script injected into
// the page could read either one alike. Logging out removes it.
export function token() { return localStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(t) { localStorage.setItem(TOKEN_KEY, t); }
export function clearToken() { localStorage.removeItem(TOKEN_KEY); }

const signedOutListeners = [];
/** Calls fn(message) when the server refuses the token (401): the app shows its login page. */
export function onSignedOut(fn) { signedOutListeners.push(fn); }
function signedOut(message) {
  for (const fn of signedOutListeners) fn(message);
}
function refused(status) {
  return token()
    ? `The server refused the stored token${status?.message ? `: ${status.message}` : ''}. Enter a valid one.`
    : 'This server needs an API token.';
}

/** Asks the server who a token is (or the stored one): {auth, name, scope}; rejects with ApiError. */
export async function whoami(t = token()) {
  const h = new Headers({ Accept: 'application/json' });
  if (t) h.set('Authorization', `Bearer ${t}`);
  const res = await fetch('/api/v1/whoami', { headers: h });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = null; }
  if (!res.ok) throw new ApiError(res.status, json, text.slice(0, 300));
  return json;
}

function headers(extra) {
  const h = new Headers(extra || {});
  const t = token();
  if (t) h.set('Authorization', `Bearer ${t}`);
  return h;
}

/**
 * Calls the API. `body` may be a string (sent with `type`, default YAML) or an object (JSON).
 * Resolves to parsed JSON, or text when `accept` is not JSON; rejects with ApiError.
 */
export async function api(path, { method = 'GET', body, type, accept = 'application/json', signal } = {}) {
  const init = { method, signal, headers: headers({ Accept: accept }) };
  if (body !== undefined) {
    const isText = typeof body === 'string';
    init.body = isText ? body : JSON.stringify(body);
    init.headers.set('Content-Type', type || (isText ? 'application/yaml' : 'application/json'));
  }
  const res = await fetch(path, init);
  const text = await res.text();
  const ctype = res.headers.get('content-type') || '';
  let json = null;
  if (ctype.includes('json') && text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (res.status === 401) signedOut(refused(json));
  if (!res.ok) throw new ApiError(res.status, json, text.slice(0, 300));
  if (accept.includes('json')) return json ?? (text ? JSON.parse(text) : null);
  return json && !ctype.includes('yaml') && !ctype.startsWith('text/') ? json : text;
}

/**
 * Follows a Server-Sent Events stream. Calls onEvent(type, data, id) per event and resolves when
 * the stream ends (or `signal` aborts). Reconnects after a dropped connection, skipping ids
 * already seen.
 */
export async function streamEvents(path, { onEvent, signal, onError }) {
  let lastId = -1;
  for (let attempt = 0; !signal?.aborted; attempt++) {
    let ended = false;
    try {
      const res = await fetch(path, { headers: headers({ Accept: 'text/event-stream' }), signal });
      if (!res.ok) {
        const text = await res.text();
        let json = null;
        try { json = JSON.parse(text); } catch { json = null; }
        if (res.status === 401) signedOut(refused(json));
        throw new ApiError(res.status, json, text.slice(0, 300));
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
          const raw = buf.slice(0, cut);
          buf = buf.slice(cut + (buf[cut] === '\r' ? 4 : 2));
          const ev = parseEvent(raw);
          if (!ev) continue;
          if (ev.id !== null && Number(ev.id) <= lastId) continue;
          if (ev.id !== null) lastId = Number(ev.id);
          if (ev.type === 'end') ended = true;
          // The server ends a stream with an `error` Status (its token was revoked).
          if (ev.type === 'error' && ev.data?.kind === 'Status') {
            const err = new ApiError(ev.data.code, ev.data);
            if (err.code === 401) signedOut(refused(ev.data));
            throw err;
          }
          onEvent(ev.type, ev.data, ev.id);
        }
      }
      if (ended) return;
    } catch (e) {
      if (signal?.aborted) return;
      if (e instanceof ApiError && e.code < 500) { onError?.(e); return; }
      onError?.(e);
    }
    if (ended) return;
    await new Promise((r) => setTimeout(r, Math.min(5000, 500 * (attempt + 1))));
  }
}

function parseEvent(raw) {
  let type = 'message';
  let id = null;
  const data = [];
  for (const line of raw.split(/\r?\n/)) {
    if (!line || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  }
  if (!data.length && type === 'message') return null;
  const text = data.join('\n');
  let parsed = text;
  try { parsed = JSON.parse(text); } catch { /* plain text data */ }
  return { type, id, data: parsed };
}

/** Runs: PipelineRuns and standalone TaskRuns. */
export const runsApi = {
  pipelineRuns: (limit) => api(`${tektonBase()}/pipelineruns${limit ? `?limit=${limit}` : ''}`),
  taskRuns: (limit) => api(`${tektonBase()}/taskruns${limit ? `?limit=${limit}` : ''}`),
  pipelineRun: (name) => api(`${tektonBase()}/pipelineruns/${encodeURIComponent(name)}`),
  taskRun: (name) => api(`${tektonBase()}/taskruns/${encodeURIComponent(name)}`),
  children: (name) => api(`${runBase(name)}/taskruns`),
  cancel: (name) => api(`${runBase(name)}/cancel`, { method: 'POST' }),
  // Tekton's own release of a held PipelineRun: clear spec.status with a merge patch.
  release: (name) => api(`${tektonBase()}/pipelineruns/${encodeURIComponent(name)}`, { method: 'PATCH', body: { spec: { status: '' } }, type: 'application/merge-patch+json' }),
  rerun: (name) => api(`${runBase(name)}/rerun`, { method: 'POST' }),
  create: (obj) => api(`${tektonBase()}/pipelineruns`, { method: 'POST', body: obj }),
  logsUrl: (name, follow) => `${runBase(name)}/logs${follow ? '?follow=true' : ''}`,
  namespaces: () => api('/api/v1/namespaces'),
};

/** A human sentence for an error, with the 404-of-a-missing-endpoint case spelled out. */
export function describeError(e, what = 'This feature') {
  if (e instanceof ApiError && e.missing) return `${what} is not available on this server yet (endpoint missing).`;
  if (e instanceof ApiError && e.code === 401) return 'Not signed in: enter an API token.';
  return e?.message || String(e);
}
