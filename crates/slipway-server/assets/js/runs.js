// The runs list: PipelineRuns and standalone TaskRuns with status filters, a text filter, a kind
// filter (all reflected in the URL query), live refresh every 2 s while the page is visible, and
// Run again / Release / Cancel actions. A held PipelineRun (created with spec.status
// PipelineRunPending) reads "Held" and offers Release, which clears spec.status.
import { h, toast, confirmDialog } from './dom.js';
import { runsApi, describeError } from './api.js';
import { runState, statusIcon, LABELS } from './status.js';
import { relativeTime, absoluteTime, formatDuration, span, parseTime } from './format.js';
import { setQuery } from './router.js';

const STATES = ['all', 'running', 'pending', 'succeeded', 'failed', 'cancelled'];
const POLL_MS = 2000;

/** One row's data from a PipelineRun or TaskRun. */
export function summarize(obj) {
  const kind = obj.kind || 'PipelineRun';
  const labels = obj.metadata?.labels || {};
  const st = runState(obj);
  const owner = kind === 'PipelineRun'
    ? labels['tekton.dev/pipeline'] || obj.spec?.pipelineRef?.name || (obj.spec?.pipelineSpec ? '(embedded)' : '')
    : labels['tekton.dev/task'] || obj.spec?.taskRef?.name || (obj.spec?.taskSpec ? '(embedded)' : '');
  const start = obj.status?.startTime || obj.metadata?.creationTimestamp;
  return {
    name: obj.metadata?.name || '',
    kind,
    owner,
    ...st,
    start,
    end: obj.status?.completionTime,
    sortKey: parseTime(obj.metadata?.creationTimestamp || obj.status?.startTime) ?? Number.MAX_SAFE_INTEGER,
  };
}

export function mount(root) {
  document.title = 'Runs · Slipway';
  const q = new URLSearchParams(location.search);
  const filter = { status: STATES.includes(q.get('status')) ? q.get('status') : 'all', kind: q.get('kind') || '', q: q.get('q') || '' };
  let rows = [];
  let timer = null;
  let stopped = false;
  const rowEls = new Map();
  // Runs released from here: a run may still read as held until the queue starts it.
  const released = new Set();

  const segButtons = STATES.map((s) => h('button', {
    type: 'button', 'data-testid': `filter-status-${s}`, 'aria-pressed': String(filter.status === s),
    onclick: () => { filter.status = s; sync(); },
  }, s === 'all' ? 'All' : LABELS[s], h('span', { class: 'count' })));
  const search = h('input', { type: 'search', placeholder: 'Filter by name or pipeline…', value: filter.q,
    'aria-label': 'Filter runs by name, pipeline or task', 'data-testid': 'filter-text',
    oninput: () => { filter.q = search.value; sync(); } });
  const kindSel = h('select', { 'aria-label': 'Kind', 'data-testid': 'filter-kind', onchange: () => { filter.kind = kindSel.value; sync(); } },
    h('option', { value: '' }, 'All kinds'), h('option', { value: 'PipelineRun' }, 'PipelineRuns'), h('option', { value: 'TaskRun' }, 'TaskRuns'));
  kindSel.value = filter.kind;
  const live = h('span', { class: 'live', 'data-testid': 'live-indicator' }, 'Live');
  const tbody = h('tbody', { 'data-testid': 'runs-body' });
  const empty = h('div', { class: 'empty', hidden: true, 'data-testid': 'runs-empty' });
  const banner = h('div', { class: 'banner error', hidden: true, role: 'alert' });

  root.append(
    h('div', { class: 'page-head' }, h('div', { class: 'title' }, h('h1', {}, 'Runs'),
      h('div', { class: 'meta' }, 'PipelineRuns and TaskRuns, newest first'))),
    banner,
    h('section', { class: 'panel', 'aria-label': 'Runs' },
      h('div', { class: 'filters', role: 'search' },
        h('div', { class: 'segmented', role: 'group', 'aria-label': 'Status' }, segButtons), search, kindSel, live),
      h('table', { 'data-testid': 'runs-table' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Name'),
          h('th', { scope: 'col' }, 'Pipeline / Task'), h('th', { scope: 'col' }, 'Started'),
          h('th', { scope: 'col', class: 'num' }, 'Duration'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
        tbody),
      empty));

  function matches(r) {
    if (filter.status !== 'all' && r.state !== filter.status) return false;
    if (filter.kind && r.kind !== filter.kind) return false;
    const t = filter.q.trim().toLowerCase();
    return !t || r.name.toLowerCase().includes(t) || r.owner.toLowerCase().includes(t);
  }

  function sync() {
    setQuery({ status: filter.status === 'all' ? '' : filter.status, kind: filter.kind, q: filter.q });
    draw();
  }

  function row(r) {
    const sig = JSON.stringify([r.state, r.label, r.held, released.has(r.name), r.reason, r.owner, r.start, r.end, r.message]);
    let tr = rowEls.get(r.name);
    if (tr && tr.dataset.sig === sig) return tr;
    const act = [];
    act.push(h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'rerun', 'aria-label': `Run ${r.name} again`,
      onclick: () => rerun(r.name) }, 'Run again'));
    if (r.held && r.kind === 'PipelineRun') {
      act.push(h('button', { type: 'button', class: 'btn btn-small btn-primary', 'data-testid': 'release', 'aria-label': `Release ${r.name}`,
        title: 'Clear spec.status so that the run starts when a slot is free', disabled: released.has(r.name),
        onclick: (e) => release(r.name, e.currentTarget) }, released.has(r.name) ? 'Released' : 'Release'));
    }
    if (!r.done) {
      act.push(h('button', { type: 'button', class: 'btn btn-small btn-danger', 'data-testid': 'cancel', 'aria-label': `Cancel ${r.name}`,
        onclick: () => cancel(r.name) }, 'Cancel'));
    }
    tr = h('tr', { 'data-testid': 'run-row', 'data-name': r.name, 'data-status': r.state, 'data-held': r.held ? 'true' : null, 'data-kind': r.kind, 'data-sig': sig },
      h('td', {}, h('span', { class: `status st-${r.state}${r.held ? ' held' : ''}`, title: r.message || r.reason },
        statusIcon(r.held ? 'held' : r.state), r.label)),
      h('td', {}, h('a', { class: 'run-name', href: `/ui/runs/${encodeURIComponent(r.name)}` }, r.name), ' ',
        h('span', { class: 'kind-tag' }, r.kind)),
      h('td', {}, r.owner || h('span', { class: 'muted' }, '—')),
      h('td', { title: absoluteTime(r.start), 'data-time': r.start || '' }, relativeTime(r.start)),
      h('td', { class: 'num', 'data-start': r.start || '', 'data-end': r.end || '', 'data-done': String(r.done) },
        r.start ? formatDuration(span(r.start, r.done ? r.end : null)) : '—'),
      h('td', { class: 'actions' }, act));
    rowEls.set(r.name, tr);
    return tr;
  }

  function draw() {
    segButtons.forEach((b, i) => {
      const s = STATES[i];
      b.setAttribute('aria-pressed', String(filter.status === s));
      b.querySelector('.count').textContent = String(rows.filter((r) => (s === 'all' || r.state === s)
        && (!filter.kind || r.kind === filter.kind)).length);
    });
    const shown = rows.filter(matches);
    const want = shown.map(row);
    // Keep unchanged rows in place so that focus and hover survive the refresh.
    if (tbody.children.length !== want.length || want.some((tr, i) => tbody.children[i] !== tr)) tbody.replaceChildren(...want);
    for (const tr of want) {
      const [, , , started, dur] = tr.children;
      started.textContent = relativeTime(started.dataset.time);
      if (dur.dataset.start && dur.dataset.done !== 'true') dur.textContent = formatDuration(span(dur.dataset.start, null));
    }
    empty.hidden = shown.length > 0;
    empty.textContent = rows.length ? 'No runs match these filters.' : 'No runs yet. Start one with `slipway run -f pipeline.yaml`.';
  }

  async function refresh() {
    try {
      const [prs, trs] = await Promise.all([runsApi.pipelineRuns(), runsApi.taskRuns().catch(() => ({ items: [] }))]);
      if (stopped) return;
      const items = [...(prs.items || []).map((o) => ({ kind: 'PipelineRun', ...o })),
        ...(trs.items || []).filter((o) => !o.metadata?.labels?.['tekton.dev/pipelineRun']).map((o) => ({ kind: 'TaskRun', ...o }))];
      rows = items.map(summarize).sort((a, b) => b.sortKey - a.sortKey);
      banner.hidden = true;
      draw();
    } catch (e) {
      if (stopped) return;
      banner.hidden = false;
      banner.textContent = `Could not load runs: ${describeError(e, 'The runs list')}`;
    }
  }

  async function rerun(name) {
    try {
      const created = await runsApi.rerun(name);
      const n = created?.metadata?.name;
      toast(h('span', {}, 'Started ', n ? h('a', { href: `/ui/runs/${encodeURIComponent(n)}` }, n) : 'a new run'), 'ok');
      refresh();
    } catch (e) {
      toast(`Run again failed: ${describeError(e, 'Run again')}`, 'error');
    }
  }

  async function release(name, button) {
    if (button) button.disabled = true;
    try {
      await runsApi.release(name);
      released.add(name);
      toast(`Released ${name}`, 'ok');
    } catch (e) {
      toast(`Release failed: ${describeError(e, 'Release')}`, 'error');
      if (button) button.disabled = false;
    }
    refresh();
  }

  async function cancel(name) {
    if (!(await confirmDialog(`Cancel ${name}?`, 'Running tasks are stopped; finally tasks still run.', 'Cancel run'))) return;
    try {
      await runsApi.cancel(name);
      toast(`Cancelling ${name}`, 'ok');
      refresh();
    } catch (e) {
      toast(`Cancel failed: ${describeError(e, 'Cancel')}`, 'error');
    }
  }

  function tick() {
    clearTimeout(timer);
    if (stopped) return;
    if (document.visibilityState === 'visible') {
      live.classList.remove('paused');
      live.textContent = 'Live';
      refresh().finally(() => { if (!stopped) timer = setTimeout(tick, POLL_MS); });
    } else {
      live.classList.add('paused');
      live.textContent = 'Paused';
    }
  }
  const onVisible = () => { if (document.visibilityState === 'visible') tick(); };
  document.addEventListener('visibilitychange', onVisible);
  // Keyboard: "/" focuses the filter, as on GitHub and GitLab.
  const onKey = (e) => {
    if (e.key === '/' && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement?.tagName)) { e.preventDefault(); search.focus(); }
  };
  document.addEventListener('keydown', onKey);
  tick();
  return () => { stopped = true; clearTimeout(timer); document.removeEventListener('visibilitychange', onVisible); document.removeEventListener('keydown', onKey); };
}
