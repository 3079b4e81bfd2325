// Resource pages: lists of Tasks, Pipelines and StepActions, and the YAML editor page with
// live server validation, Save (PUT, or POST for a new resource), Delete and, for a Pipeline or
// a Task, Start run (a dialog for its params and workspaces; see start-run.js).
import { h, toast, confirmDialog } from './dom.js';
import { api, RESOURCE_BASE, describeError, ApiError } from './api.js';
import { current } from './namespace.js';
import { relativeTime, absoluteTime } from './format.js';
import { navigate } from './router.js';
import { createEditor } from './editor.js';
import { SNIPPETS } from './tekton-schema.js';
import { analyze, docKind } from './yaml-context.js';
import { toYaml } from './yaml-dump.js';
import { openStartDialog } from './start-run.js';

const KINDS = {
  tasks: { label: 'Tasks', one: 'Task' },
  pipelines: { label: 'Pipelines', one: 'Pipeline' },
  stepactions: { label: 'StepActions', one: 'StepAction' },
};
const BY_KIND = { Task: 'tasks', Pipeline: 'pipelines', StepAction: 'stepactions' };

function template(kind) {
  const one = KINDS[kind]?.one || 'Task';
  return SNIPPETS.root.find((s) => s.label === one).text.replace('§', '');
}

function tabs(current) {
  return h('nav', { class: 'tabs', 'aria-label': 'Resource kinds' }, Object.entries(KINDS).map(([k, v]) =>
    h('a', { href: `/ui/resources/${k}`, 'aria-current': k === current ? 'page' : null, 'data-testid': `tab-${k}` }, v.label)));
}

export function mountList(root, kind = 'tasks') {
  document.title = `${KINDS[kind].label} · Slipway`;
  let stopped = false;
  const body = h('div', { 'data-testid': 'resource-list' }, h('p', { class: 'empty' }, 'Loading…'));
  root.append(
    h('div', { class: 'page-head' },
      h('div', { class: 'title' }, h('h1', {}, 'Resources'), h('div', { class: 'meta' }, 'Tasks, Pipelines and StepActions stored on this server')),
      h('div', { class: 'actions' }, h('a', { class: 'btn btn-primary', href: `/ui/resources/new?kind=${kind}`, 'data-testid': 'resource-new' }, `New ${KINDS[kind].one}`))),
    h('section', { class: 'panel' }, tabs(kind), body));

  api(RESOURCE_BASE[kind]).then((list) => {
    if (stopped) return;
    const items = (list?.items || []).sort((a, b) => (a.metadata?.name || '').localeCompare(b.metadata?.name || ''));
    if (!items.length) {
      body.replaceChildren(h('div', { class: 'empty' }, `No ${KINDS[kind].label} yet. `,
        h('a', { href: `/ui/resources/new?kind=${kind}` }, `Create one`), ' or apply YAML with the API.'));
      return;
    }
    body.replaceChildren(h('table', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Description'), h('th', { scope: 'col' }, 'Created'))),
      h('tbody', {}, items.map((it) => h('tr', { 'data-testid': 'resource-row', 'data-name': it.metadata?.name },
        h('td', {}, h('a', { class: 'run-name', href: `/ui/resources/${kind}/${encodeURIComponent(it.metadata?.name)}` }, it.metadata?.name)),
        h('td', { class: 'muted' }, it.spec?.description || it.spec?.displayName || ''),
        h('td', { title: absoluteTime(it.metadata?.creationTimestamp) }, relativeTime(it.metadata?.creationTimestamp)))))));
  }).catch((e) => {
    if (stopped) return;
    body.replaceChildren(h('div', { class: 'banner warn', style: 'margin:14px', 'data-testid': 'endpoint-missing' },
      describeError(e, `Listing ${KINDS[kind].label}`)));
  });
  return () => { stopped = true; };
}

export function mountEditor(root, kind, name) {
  const isNew = !name;
  if (isNew) kind = new URLSearchParams(location.search).get('kind') || 'tasks';
  if (!KINDS[kind]) kind = 'tasks';
  document.title = `${isNew ? `New ${KINDS[kind].one}` : name} · Slipway`;
  let saved = isNew ? '' : null;
  let validateMissing = false;
  let editor = null;
  let stopped = false;

  const status = h('span', { class: 'editor-status', 'data-testid': 'editor-status', 'aria-live': 'polite' });
  const problems = h('div', { class: 'problems', 'data-testid': 'problems' });
  const saveBtn = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'resource-save', onclick: save }, isNew ? 'Create' : 'Save');
  const delBtn = isNew ? null : h('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'resource-delete', onclick: del }, 'Delete');
  const runBtn = !isNew && (kind === 'pipelines' || kind === 'tasks')
    ? h('button', { type: 'button', class: 'btn', 'data-testid': 'resource-run', 'aria-haspopup': 'dialog', onclick: startRun }, 'Start run') : null;
  let startDialog = null;
  const banner = h('div', { class: 'banner warn', hidden: true, 'data-testid': 'editor-banner' });
  const holder = h('div', {}, h('p', { class: 'loading' }, 'Loading…'));

  root.append(
    h('div', { class: 'page-head' },
      h('div', { class: 'title' },
        h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, h('a', { href: '/ui/resources' }, 'Resources'), ' / ',
          h('a', { href: `/ui/resources/${kind}` }, KINDS[kind].label)),
        h('h1', { 'data-testid': 'resource-title' }, isNew ? `New ${KINDS[kind].one}` : name),
        h('div', { class: 'meta' }, status)),
      h('div', { class: 'actions' }, runBtn, delBtn, saveBtn)),
    banner,
    h('div', { class: 'editor-layout' }, holder,
      h('aside', { class: 'panel', 'aria-label': 'Problems' },
        h('div', { class: 'panel-head' }, h('h2', {}, 'Problems')), problems,
        h('div', { class: 'keys' }, h('kbd', {}, 'Ctrl'), '+', h('kbd', {}, 'Space'), ' complete · ', h('kbd', {}, 'Ctrl'), '+', h('kbd', {}, 'S'),
          ' save · hover a field for docs · ', h('kbd', {}, 'Esc'), ' ', h('kbd', {}, 'Tab'), ' leave the editor'))));

  let currentDiags = [];
  function showProblems(diags) {
    currentDiags = diags;
    const errors = diags.filter((d) => d.severity !== 'warning').length;
    const warnings = diags.length - errors;
    if (validateMissing) status.textContent = 'Live validation is not available on this server yet (endpoint missing).';
    else status.textContent = diags.length ? `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}` : 'No problems found';
    status.textContent += dirty() ? ' · unsaved changes' : '';
    if (!diags.length) { problems.replaceChildren(h('p', { class: 'muted', style: 'padding:8px 14px;margin:0' }, validateMissing ? 'Not checked.' : 'No problems.')); return; }
    problems.replaceChildren(h('ul', {}, diags.map((d) => h('li', {}, h('button', {
      type: 'button', 'data-testid': 'problem', onclick: () => editor.reveal(d.line || 1, d.column || 1),
    }, h('span', { class: `sev ${d.severity === 'warning' ? 'warning' : 'error'}`, 'aria-label': d.severity || 'error' }, d.severity === 'warning' ? '⚠' : '✕'),
    h('span', {}, h('span', { class: 'loc' }, `${d.line || '?'}:${d.column || 1} `), d.message, d.hint ? h('div', { class: 'hint' }, d.hint) : null))))));
  }

  const dirty = () => editor && saved !== null && editor.getValue() !== saved;

  async function validate(text) {
    if (validateMissing) return null;
    try {
      const res = await api(`/api/v1/validate?namespace=${encodeURIComponent(current())}`, { method: 'POST', body: text });
      return res?.diagnostics || [];
    } catch (e) {
      if (e instanceof ApiError && e.missing) { validateMissing = true; showProblems([]); return null; }
      if (e instanceof ApiError && e.diagnostics?.length) return e.diagnostics;
      status.textContent = `Validation failed: ${describeError(e)}`;
      return null;
    }
  }

  function start(text) {
    saved = text;
    editor = createEditor({ value: text, validate, label: `${KINDS[kind].one} YAML`,
      onDiagnostics: showProblems, onChange: () => showProblems(currentDiags), onSave: save });
    holder.replaceChildren(editor.el);
    showProblems([]);
    status.textContent = 'Checking…';
  }

  if (isNew) start(template(kind));
  else {
    api(`${RESOURCE_BASE[kind]}/${encodeURIComponent(name)}`, { accept: 'application/yaml' }).then((res) => {
      if (stopped) return;
      if (typeof res === 'string') start(res);
      else {
        const obj = { ...res };
        delete obj.status;
        if (obj.metadata) { obj.metadata = { ...obj.metadata }; for (const k of ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields']) delete obj.metadata[k]; }
        start(`${toYaml(obj)}\n`);
      }
    }).catch((e) => {
      if (stopped) return;
      holder.replaceChildren(h('div', { class: 'banner warn', 'data-testid': 'endpoint-missing' }, describeError(e, `Editing ${KINDS[kind].label}`)));
      saveBtn.disabled = true;
      if (delBtn) delBtn.disabled = true;
    });
  }

  async function save() {
    if (!editor) return;
    const text = editor.getValue();
    const lines = analyze(text);
    const docKindName = docKind(lines, 0);
    const target = isNew ? BY_KIND[docKindName] || kind : kind;
    saveBtn.disabled = true;
    try {
      const obj = isNew
        ? await api(RESOURCE_BASE[target], { method: 'POST', body: text })
        : await api(`${RESOURCE_BASE[target]}/${encodeURIComponent(name)}`, { method: 'PUT', body: text });
      saved = text;
      showProblems(currentDiags);
      toast(`Saved ${KINDS[target].one} ${obj?.metadata?.name || name || ''}`, 'ok');
      if (isNew && obj?.metadata?.name) navigate(`/ui/resources/${target}/${encodeURIComponent(obj.metadata.name)}`, { replace: true });
    } catch (e) {
      if (e instanceof ApiError && e.diagnostics?.length) {
        editor.setDiagnostics(e.diagnostics);
        toast(`Not saved: ${e.diagnostics.length} problem${e.diagnostics.length === 1 ? '' : 's'}`, 'error');
      } else toast(`Save failed: ${describeError(e, 'Saving')}`, 'error');
    } finally { saveBtn.disabled = false; }
  }

  async function del() {
    if (!(await confirmDialog(`Delete ${KINDS[kind].one} ${name}?`, 'Runs that already used it keep their copy.', 'Delete'))) return;
    try {
      await api(`${RESOURCE_BASE[kind]}/${encodeURIComponent(name)}`, { method: 'DELETE' });
      saved = editor?.getValue() ?? saved;
      toast(`Deleted ${name}`, 'ok');
      navigate(`/ui/resources/${kind}`);
    } catch (e) { toast(`Delete failed: ${describeError(e, 'Deleting')}`, 'error'); }
  }

  // The form is built from the stored definition (what the run will use), not the editor's text.
  async function startRun() {
    if (startDialog?.dialog.open) return;
    runBtn.disabled = true;
    try {
      const resource = await api(`${RESOURCE_BASE[kind]}/${encodeURIComponent(name)}`);
      if (stopped) return;
      startDialog = openStartDialog({ kind, name, resource, unsaved: dirty(), returnFocus: runBtn });
    } catch (e) { toast(`Start failed: ${describeError(e, 'Starting runs')}`, 'error'); } finally { runBtn.disabled = false; }
  }

  const beforeUnload = (e) => { if (dirty()) { e.preventDefault(); e.returnValue = ''; } };
  window.addEventListener('beforeunload', beforeUnload);
  return () => { stopped = true; startDialog?.close(); editor?.destroy(); window.removeEventListener('beforeunload', beforeUnload); };
}
