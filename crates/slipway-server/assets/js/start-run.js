// The "Start run" dialog of a Pipeline or Task page: one field per declared param (defaults
// filled in, required ones marked), one binding per declared workspace (emptyDir, a fresh
// volumeClaimTemplate, or a stored Secret / ConfigMap), a name prefix, a priority and, for a
// PipelineRun, "hold". It POSTs the run as YAML (shown live under "YAML") and, on 201, goes to
// the run's page; a refusal is shown in the dialog with the server's diagnostics.
import { h, toast } from './dom.js';
import { api, ApiError, describeError } from './api.js';
import { current, keep, tektonBase } from './namespace.js';
import { navigate } from './router.js';
import { toYaml } from './yaml-dump.js';

const PRIORITY = 'slipway.dev/priority';
const PENDING = 'PipelineRunPending';
const VCT = { spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } };
let seq = 0;

/** The declared type of a param: its `type`, or what its default is. */
function paramType(p) {
  if (p.type === 'array' || p.type === 'object' || p.type === 'string') return p.type;
  if (Array.isArray(p.default)) return 'array';
  if (p.default && typeof p.default === 'object') return 'object';
  if (p.properties) return 'object';
  return 'string';
}

function defaultText(p, type) {
  const d = p.default;
  if (d === undefined || d === null) return '';
  if (type === 'array') return (Array.isArray(d) ? d : [d]).map(String).join('\n');
  if (type === 'object') return Object.entries(d || {}).map(([k, v]) => `${k}: ${v}`).join('\n');
  return String(d);
}

/** Reads one field into a param value, or { error }. */
function parseValue(type, text, required) {
  if (type === 'array') {
    const items = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
    if (required && !items.length) return { error: 'Required: enter at least one value.' };
    return { value: items };
  }
  if (type === 'object') {
    const obj = {};
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (!line.trim()) continue;
      const c = line.indexOf(':');
      const key = c < 0 ? '' : line.slice(0, c).trim();
      if (!key) return { error: `Line ${i + 1}: write “key: value”.` };
      if (key in obj) return { error: `Line ${i + 1}: key “${key}” is given twice.` };
      obj[key] = line.slice(c + 1).trim();
    }
    if (required && !Object.keys(obj).length) return { error: 'Required: enter at least one “key: value” line.' };
    return { value: obj };
  }
  if (required && text === '') return { error: 'Required: this param has no default.' };
  return { value: text };
}

/**
 * Opens the dialog. `kind` is 'pipelines' or 'tasks'; `resource` the stored object (its
 * spec.params and spec.workspaces drive the form); `unsaved` warns that the editor differs from
 * it. Returns { close }.
 */
export function openStartDialog({ kind, name, resource, unsaved = false, returnFocus = null }) {
  const isPipeline = kind === 'pipelines';
  const runKind = isPipeline ? 'PipelineRun' : 'TaskRun';
  const one = isPipeline ? 'Pipeline' : 'Task';
  const spec = resource?.spec || {};
  const id = `start-${++seq}`;
  const fields = [];
  const bindings = [];

  // ---- params ----
  function paramField(p, i) {
    const type = paramType(p);
    const required = p.default === undefined;
    const inputId = `${id}-p${i}`;
    const helpId = `${inputId}-help`;
    const errId = `${inputId}-err`;
    const enumValues = type === 'string' && Array.isArray(p.enum) && p.enum.length ? p.enum.map(String) : null;
    const initial = defaultText(p, type);
    const common = { id: inputId, name: p.name, 'data-testid': `param-${p.name}`, 'data-param': p.name,
      'aria-describedby': `${helpId} ${errId}`, 'aria-required': required ? 'true' : null, spellcheck: 'false' };
    let input;
    if (enumValues) {
      input = h('select', common,
        required ? h('option', { value: '' }, '— choose —') : null,
        enumValues.map((v) => h('option', { value: v }, v)));
      input.value = required ? '' : initial;
    } else if (type === 'string' && !initial.includes('\n')) {
      input = h('input', { ...common, type: 'text', autocomplete: 'off', placeholder: required ? 'required' : null });
      input.value = initial;
    } else {
      const rows = Math.min(8, Math.max(3, initial.split('\n').length + 1));
      const placeholder = type === 'array' ? 'one value\nper line'
        : type === 'object' ? (p.properties ? Object.keys(p.properties).map((k) => `${k}: …`).join('\n') : 'key: value')
          : null;
      input = h('textarea', { ...common, rows, placeholder });
      input.value = initial;
    }
    const format = type === 'array' ? 'One value per line (commas are kept as part of a value); blank lines are ignored.'
      : type === 'object' ? `One “key: value” per line${p.properties ? `; keys: ${Object.keys(p.properties).join(', ')}` : ''}.`
        : null;
    const err = h('div', { class: 'field-error', id: errId, 'data-testid': `param-error-${p.name}`, hidden: true });
    const field = h('div', { class: 'field', 'data-testid': 'param-field', 'data-name': p.name },
      h('label', { for: inputId },
        h('span', { class: 'mono' }, p.name),
        h('span', { class: 'type-tag' }, type),
        required ? h('span', { class: 'req' }, 'required') : h('span', { class: 'opt' }, 'has a default')),
      input,
      h('div', { class: 'help', id: helpId }, p.description ? h('div', {}, p.description) : null, format ? h('div', { class: 'muted' }, format) : null),
      err);
    const entry = {
      name: p.name, type, required, input, field,
      read() { return parseValue(type, input.value, required); },
      showError(msg) {
        err.textContent = msg || '';
        err.hidden = !msg;
        input.setAttribute('aria-invalid', msg ? 'true' : 'false');
        field.classList.toggle('invalid', !!msg);
      },
    };
    input.addEventListener('input', () => {
      if (input.tagName === 'TEXTAREA') input.rows = Math.min(10, Math.max(3, input.value.split('\n').length + 1));
      changed();
    });
    input.addEventListener('change', changed);
    fields.push(entry);
    return field;
  }

  // ---- workspaces ----
  const sourceGroups = (secrets, configMaps) => [['Secret', 'secret', secrets], ['ConfigMap', 'configMap', configMaps]].map(([label, key, items]) =>
    h('optgroup', { label: `${label}s`, 'data-source': key },
      items === null ? h('option', { disabled: true, value: `${key}:` }, 'loading…')
        : items.length ? items.map((n) => h('option', { value: `${key}:${n}` }, `${label} ${n}`))
          : h('option', { disabled: true, value: `${key}:` }, `no ${label}s stored`)));
  function workspaceRow(w, i) {
    const selectId = `${id}-w${i}`;
    const helpId = `${selectId}-help`;
    const select = h('select', { id: selectId, 'data-testid': `workspace-${w.name}`, 'data-workspace': w.name, 'aria-describedby': helpId },
      w.optional ? h('option', { value: '' }, '— not bound (optional) —') : null,
      h('option', { value: 'emptyDir' }, 'emptyDir — an empty directory for this run'),
      h('option', { value: 'volumeClaimTemplate' }, 'volumeClaimTemplate — a new 1Gi ReadWriteOnce volume'),
      sourceGroups(null, null));
    select.value = 'emptyDir';
    select.addEventListener('change', refresh);
    const tags = [w.optional ? 'optional' : null, w.readOnly ? 'read-only' : null].filter(Boolean);
    bindings.push({ name: w.name, select });
    return h('div', { class: 'field ws-row', 'data-testid': 'workspace-field', 'data-name': w.name },
      h('label', { for: selectId }, h('span', { class: 'mono' }, w.name), tags.map((t) => h('span', { class: 'type-tag' }, t))),
      select,
      h('div', { class: 'help', id: helpId }, w.description || (w.mountPath ? `Mounted at ${w.mountPath}` : '')));
  }

  function fillSources(secrets, configMaps) {
    for (const b of bindings) {
      const keep = b.select.value;
      for (const g of b.select.querySelectorAll('optgroup')) g.remove();
      b.select.append(...sourceGroups(secrets, configMaps));
      b.select.value = keep;
    }
    refresh();
  }

  function binding(b) {
    const v = b.select.value;
    if (!v) return null;
    if (v === 'emptyDir') return { name: b.name, emptyDir: {} };
    if (v === 'volumeClaimTemplate') return { name: b.name, volumeClaimTemplate: structuredClone(VCT) };
    const [src, ...rest] = v.split(':');
    const ref = rest.join(':');
    if (src === 'secret') return { name: b.name, secret: { secretName: ref } };
    return { name: b.name, configMap: { name: ref } };
  }

  // ---- options ----
  const prefix = h('input', { type: 'text', id: `${id}-gen`, 'data-testid': 'start-generate-name', autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': `${id}-gen-help ${id}-gen-err` });
  prefix.value = `${name}-run-`;
  const prefixErr = h('div', { class: 'field-error', id: `${id}-gen-err`, hidden: true });
  const priority = h('input', { type: 'number', step: '1', id: `${id}-prio`, 'data-testid': 'start-priority', placeholder: '0',
    'aria-describedby': `${id}-prio-help ${id}-prio-err`, inputmode: 'numeric' });
  const priorityErr = h('div', { class: 'field-error', id: `${id}-prio-err`, hidden: true });
  const hold = isPipeline ? h('input', { type: 'checkbox', id: `${id}-hold`, 'data-testid': 'start-hold', 'aria-describedby': `${id}-hold-help` }) : null;
  for (const el of [prefix, priority, hold]) if (el) { el.addEventListener('input', changed); el.addEventListener('change', changed); }

  function readOptions() {
    const errors = {};
    const gen = prefix.value.trim() || `${name}-run-`;
    if (!/^[a-z0-9][a-z0-9.-]*$/.test(gen) || gen.length > 200) {
      errors.prefix = 'Lower-case letters, digits, “-” and “.”, starting with a letter or digit.';
    }
    const p = priority.value.trim();
    let prio = null;
    if (p !== '' || priority.validity.badInput) {
      if (!/^[-+]?\d+$/.test(p)) errors.priority = 'A whole number: higher starts first (default 0).';
      else prio = String(Number.parseInt(p, 10));
    }
    return { gen, prio, hold: !!hold?.checked, errors };
  }

  // ---- the run ----
  function build() {
    const params = [];
    for (const f of fields) {
      const r = f.read();
      if (r.error === undefined) params.push({ name: f.name, value: r.value });
    }
    const { gen, prio, hold: held } = readOptions();
    const metadata = { generateName: gen };
    if (prio !== null) metadata.annotations = { [PRIORITY]: prio };
    const runSpec = isPipeline ? { pipelineRef: { name } } : { taskRef: { name } };
    if (params.length) runSpec.params = params;
    const ws = bindings.map(binding).filter(Boolean);
    if (ws.length) runSpec.workspaces = ws;
    if (held) runSpec.status = PENDING;
    return { apiVersion: 'tekton.dev/v1', kind: runKind, metadata, spec: runSpec };
  }

  const yamlView = h('pre', { class: 'start-yaml', 'data-testid': 'start-yaml', tabindex: '0', 'aria-label': `${runKind} YAML to be sent` });
  let errorLines = new Set();
  let attempted = false;
  function changed() {
    if (attempted) checkAll();
    refresh();
  }
  function refresh() {
    const text = `${toYaml(build())}\n`;
    yamlView.replaceChildren(...text.replace(/\n$/, '').split('\n').map((l, i) =>
      h('span', { class: `yl${errorLines.has(i + 1) ? ' err' : ''}`, 'data-line': i + 1 }, h('span', { class: 'ln', 'aria-hidden': 'true' }, String(i + 1)), l)));
    return text;
  }

  // ---- the dialog ----
  const errorBox = h('div', { class: 'banner error start-error', role: 'alert', 'data-testid': 'start-error', hidden: true });
  const summary = h('div', { class: 'banner warn', role: 'alert', 'data-testid': 'start-invalid', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'start-submit' }, 'Start run');
  const cancel = h('button', { type: 'button', class: 'btn', 'data-testid': 'start-cancel', onclick: () => close() }, 'Cancel');
  let optionsDetails = null;
  const yamlDetails = h('details', { class: 'start-section' }, h('summary', {}, 'YAML'), yamlView);
  const params = spec.params || [];
  const workspaces = spec.workspaces || [];
  const requiredCount = params.filter((p) => p.default === undefined).length;

  const form = h('form', { class: 'start-form', novalidate: true, onsubmit: onSubmit },
    h('div', { class: 'start-head' },
      h('h2', { id: `${id}-title` }, 'Start ', h('span', { class: 'mono' }, name)),
      h('p', { id: `${id}-desc` }, `Creates a ${runKind} of ${one} ${name}`,
        requiredCount ? `; ${requiredCount} required param${requiredCount === 1 ? '' : 's'} (marked “required”) must be filled in.` : '.'),
      spec.description ? h('p', { class: 'muted' }, spec.description) : null),
    h('div', { class: 'start-scroll' },
      unsaved ? h('div', { class: 'banner warn', 'data-testid': 'start-unsaved' }, `The editor has unsaved changes; the run uses the stored ${one}.`) : null,
      errorBox, summary,
      h('fieldset', { class: 'start-section', 'data-testid': 'start-params' },
        h('legend', {}, 'Parameters'),
        params.length ? params.map(paramField) : h('p', { class: 'muted' }, `This ${one} declares no params.`)),
      h('fieldset', { class: 'start-section', 'data-testid': 'start-workspaces' },
        h('legend', {}, 'Workspaces'),
        workspaces.length ? workspaces.map(workspaceRow) : h('p', { class: 'muted' }, `This ${one} declares no workspaces.`)),
      optionsDetails = h('details', { class: 'start-section' },
        h('summary', {}, 'Options'),
        h('div', { class: 'field' },
          h('label', { for: prefix.id }, 'Name prefix (generateName)'), prefix,
          h('div', { class: 'help', id: `${id}-gen-help` }, 'The server adds a random suffix.'), prefixErr),
        h('div', { class: 'field' },
          h('label', { for: priority.id }, 'Priority'), priority,
          h('div', { class: 'help', id: `${id}-prio-help` }, `Annotation ${PRIORITY}: a whole number; higher starts first when runs wait for a slot.`), priorityErr),
        hold ? h('div', { class: 'field check' },
          hold, h('label', { for: hold.id }, 'Hold'),
          h('div', { class: 'help', id: `${id}-hold-help` }, `Queue it with spec.status: ${PENDING}; it starts when released.`)) : null),
      yamlDetails),
    h('div', { class: 'dialog-actions start-actions' }, h('span', { class: 'muted start-busy', 'aria-live': 'polite' }), cancel, submit));

  const dlg = h('dialog', { class: 'start-dialog', 'data-testid': 'start-dialog', 'aria-labelledby': `${id}-title`, 'aria-describedby': `${id}-desc`, 'data-kind': runKind }, form);
  const busy = form.querySelector('.start-busy');
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (returnFocus?.isConnected) returnFocus.focus();
  });
  document.body.append(dlg);
  dlg.showModal();
  refresh();
  const first = fields.find((f) => f.required) || fields[0];
  (first?.input || bindings[0]?.select || submit).focus();

  // Secrets and ConfigMaps to bind: names only; a server without them just offers none.
  const names = (path) => api(path).then((l) => (l?.items || []).map((o) => o.metadata?.name).filter(Boolean).sort()).catch(() => []);
  if (workspaces.length) {
    Promise.all([names(`/api/v1/namespaces/${encodeURIComponent(current())}/secrets`), names(`/api/v1/namespaces/${encodeURIComponent(current())}/configmaps`)])
      .then(([s, c]) => { if (dlg.open) fillSources(s, c); });
  }

  function close() { if (dlg.open) dlg.close(); }

  function showServerError(e) {
    const diags = e instanceof ApiError ? e.diagnostics || [] : [];
    errorLines = new Set(diags.map((d) => d.line).filter(Boolean));
    errorBox.replaceChildren(
      h('div', { class: 'start-error-title', 'data-testid': 'start-error-message' },
        `Not started: ${e instanceof ApiError ? (e.status?.message || e.message) : describeError(e, 'Starting runs')}`),
      diags.length ? h('ul', { class: 'diag-list' }, diags.map((d) => h('li', { 'data-testid': 'start-diagnostic' },
        d.line ? h('button', { type: 'button', class: 'loc', title: 'Show in the YAML', onclick: () => revealLine(d.line) }, `${d.line}:${d.column || 1}`) : null,
        ' ', d.message, d.hint ? h('div', { class: 'hint' }, d.hint) : null))) : null);
    errorBox.hidden = false;
    refresh();
    errorBox.scrollIntoView({ block: 'nearest' });
  }

  function revealLine(line) {
    yamlDetails.open = true;
    yamlView.querySelector(`[data-line="${line}"]`)?.scrollIntoView({ block: 'nearest' });
    yamlView.focus();
  }

  // Marks the fields in error and sums them up above the form; after a first submit it runs on
  // every edit, so that messages go away as they are fixed.
  function checkAll() {
    const bad = [];
    for (const f of fields) {
      const r = f.read();
      f.showError(r.error);
      if (r.error) bad.push(f);
    }
    const opts = readOptions();
    for (const [el, box, msg] of [[prefix, prefixErr, opts.errors.prefix], [priority, priorityErr, opts.errors.priority]]) {
      box.textContent = msg || '';
      box.hidden = !msg;
      el.setAttribute('aria-invalid', msg ? 'true' : 'false');
    }
    const missing = bad.filter((f) => f.required && f.read().error?.startsWith('Required'));
    const parts = [];
    if (missing.length) parts.push(`Required param${missing.length === 1 ? '' : 's'} not filled in: ${missing.map((f) => f.name).join(', ')}.`);
    const other = bad.length - missing.length + (opts.errors.prefix ? 1 : 0) + (opts.errors.priority ? 1 : 0);
    if (other) parts.push(`${other} field${other === 1 ? '' : 's'} to fix.`);
    summary.textContent = parts.join(' ');
    summary.hidden = !parts.length;
    return { bad, opts };
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    errorBox.hidden = true;
    errorLines = new Set();
    // Client-side checks first: required params, formats, options.
    attempted = true;
    const { bad, opts } = checkAll();
    if (bad.length || opts.errors.prefix || opts.errors.priority) {
      if (opts.errors.prefix || opts.errors.priority) optionsDetails.open = true;
      (bad[0]?.input || (opts.errors.prefix ? prefix : priority)).focus();
      return;
    }
    const text = refresh();
    submit.disabled = true;
    busy.textContent = 'Starting…';
    try {
      const created = await api(`${tektonBase()}/${isPipeline ? 'pipelineruns' : 'taskruns'}`, { method: 'POST', body: text, type: 'application/yaml' });
      const runName = created?.metadata?.name || created?.items?.[0]?.metadata?.name;
      if (!runName) throw new Error('the server did not name the new run');
      if (!dlg.open) { toast(h('span', {}, `Started `, h('a', { href: keep(`/ui/runs/${encodeURIComponent(runName)}`) }, runName)), 'ok'); return; }
      close();
      navigate(`/ui/runs/${encodeURIComponent(runName)}`);
    } catch (e) {
      if (!dlg.open) { toast(`Start failed: ${describeError(e, 'Starting runs')}`, 'error'); return; }
      showServerError(e);
    } finally {
      submit.disabled = false;
      busy.textContent = '';
    }
  }

  return { close, dialog: dlg };
}
