// The run page: header with status and times, the DAG with the critical path, the selected
// task's TaskRuns (matrix instances), step tabs with live logs, and params/results tables.
// Works for a PipelineRun and for a standalone TaskRun (a graph of one node).
import { h, toast, confirmDialog } from './dom.js';
import { runsApi, api, RESOURCE_BASE, describeError, ApiError } from './api.js';
import { runState, stepState, statusIcon, LABELS } from './status.js';
import { relativeTime, absoluteTime, formatDuration, span } from './format.js';
import { buildGraph, singleTaskGraph } from './graph.js';
import { renderDag } from './dag.js';
import { LogStore, LogViewer } from './logs.js';
import { navigate, setQuery } from './router.js';
import { toYaml } from './yaml-dump.js';

const POLL_MS = 2000;

function badge(state, label, { held = false, title = null } = {}) {
  return h('span', { class: `badge st-${state}${held ? ' held' : ''}`, 'data-testid': 'status-badge', 'data-status': state,
    'data-held': held ? 'true' : null, title }, statusIcon(held ? 'held' : state), label || LABELS[state]);
}

function kvTable(rows, testid, empty = 'None') {
  if (!rows.length) return h('p', { class: 'muted none', 'data-testid': testid }, empty);
  return h('table', { class: 'kv', 'data-testid': testid },
    h('tbody', {}, rows.map(([k, v, note]) => h('tr', { 'data-name': k },
      h('td', {}, k, note ? h('span', { class: 'muted' }, ` ${note}`) : null),
      h('td', {}, typeof v === 'string' ? v : JSON.stringify(v))))));
}

/** The steps of a TaskRun: from its spec, its status, and the logs seen so far. */
function stepsOf(tr, node, store) {
  const specSteps = tr?.status?.taskSpec?.steps || tr?.spec?.taskSpec?.steps || node?.task?.taskSpec?.steps || [];
  const names = specSteps.map((s, i) => s.name || `unnamed-${i}`);
  for (const s of tr?.status?.steps || []) if (!names.includes(s.name)) names.push(s.name);
  if (tr) for (const s of store.stepsOf(tr.metadata?.name)) if (!names.includes(s)) names.push(s);
  const done = tr ? runState(tr).done : false;
  return names.map((name) => {
    const st = (tr?.status?.steps || []).find((s) => s.name === name);
    let state = stepState(st, done);
    if (state === 'pending' && tr && store.get(tr.metadata?.name, name).length) state = 'running';
    const t = st?.terminated;
    return { name, state, duration: t ? span(t.startedAt, t.finishedAt) : st?.running ? span(st.running.startedAt, null) : null, exitCode: t?.exitCode };
  });
}

/** Matrix instances are told apart by their params, e.g. "target=linux". */
function instanceLabel(tr, i) {
  const ps = (tr.spec?.params || []).map((p) => `${p.name}=${Array.isArray(p.value) ? p.value.join(',') : typeof p.value === 'object' ? JSON.stringify(p.value) : p.value}`);
  return ps.length ? ps.join(', ') : `#${i}`;
}

export function mount(root, name) {
  document.title = `${name} · Slipway`;
  const q = new URLSearchParams(location.search);
  const sel = { task: q.get('task'), taskRun: q.get('taskrun'), step: q.get('step'), userPicked: !!q.get('task') };
  let stopped = false;
  let timer = null;
  let kind = null;
  let run = null;
  let children = [];
  let graph = null;
  let pipelineFromRef = undefined;
  let lastDagSig = '';
  let lastTaskSig = '';
  let finalLoads = 0;
  // null, 'busy' while the PATCH is under way, 'done' once released (the run may still read as
  // held until the queue starts it).
  let releasing = null;

  const store = new LogStore(name).start();
  const viewer = new LogViewer(store);

  const head = h('div', { class: 'page-head', 'data-testid': 'run-head' });
  const banner = h('div', { class: 'banner error', hidden: true, role: 'alert', 'data-testid': 'run-error' });
  const dagBody = h('div', { class: 'dag-wrap' });
  const critBox = h('div', { class: 'critical-path', 'data-testid': 'critical-path' });
  const dagPanel = h('section', { class: 'panel', 'aria-label': 'Pipeline graph' },
    h('div', { class: 'panel-head' }, h('h2', { 'data-testid': 'dag-title' }, 'Pipeline'), h('span', { class: 'muted', 'data-testid': 'dag-summary' })),
    dagBody,
    h('div', { class: 'dag-legend', 'aria-hidden': 'true' },
      h('span', {}, h('span', { class: 'swatch' }), 'runAfter'),
      h('span', {}, h('span', { class: 'swatch data' }), 'uses results'),
      h('span', {}, h('span', { class: 'swatch critical' }), 'critical path')),
    critBox);
  const taskHead = h('div', { class: 'panel-head task-head', 'data-testid': 'task-head' });
  const instances = h('div', { class: 'instances panel-body', hidden: true, role: 'group', 'aria-label': 'TaskRuns of this task', 'data-testid': 'instances' });
  const stepTabs = h('div', { class: 'steps-tabs', role: 'tablist', 'aria-label': 'Steps', 'data-testid': 'step-tabs' });
  const taskNote = h('div', { class: 'panel-body muted', hidden: true, 'data-testid': 'task-note' });
  const logHolder = h('div', { role: 'tabpanel', 'aria-label': 'Step log' }, viewer.el);
  const taskPanel = h('section', { class: 'panel', 'aria-label': 'Task', 'data-testid': 'task-panel' }, taskHead, instances, stepTabs, taskNote, logHolder);
  const side = h('aside', { class: 'side', 'aria-label': 'Params and results' });
  const yamlBox = h('details', { class: 'panel', 'data-testid': 'run-yaml' },
    h('summary', { class: 'panel-head' }, h('h2', {}, 'YAML')), h('pre', { class: 'panel-body', style: 'overflow:auto;max-height:480px;margin:0' }));

  root.append(head, banner,
    h('div', { class: 'run-grid' },
      h('div', { class: 'main-col' }, dagPanel, h('div', { style: 'height:16px' }), taskPanel, h('div', { style: 'height:16px' }), yamlBox),
      side));

  function renderHead() {
    const st = runState(run);
    const owner = kind === 'PipelineRun'
      ? run.metadata?.labels?.['tekton.dev/pipeline'] || run.spec?.pipelineRef?.name
      : run.metadata?.labels?.['tekton.dev/task'] || run.spec?.taskRef?.name;
    const ownerKind = kind === 'PipelineRun' ? 'pipelines' : 'tasks';
    // A run still being written may have no start time yet: its TaskRuns or first log line do.
    const childStarts = children.map((c) => c.status?.startTime).filter(Boolean).sort();
    const start = run.status?.startTime || childStarts[0] || (store.firstTs ? new Date(store.firstTs).toISOString() : null);
    const end = run.status?.completionTime;
    const actions = [
      h('button', { type: 'button', class: 'btn', 'data-testid': 'run-rerun', onclick: rerun }, 'Run again'),
      st.held && kind === 'PipelineRun' ? h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'release', disabled: !!releasing,
        title: 'Clear spec.status so that the run starts when a slot is free', onclick: release },
      releasing === 'done' ? 'Released' : releasing ? 'Releasing…' : 'Release') : null,
      st.done ? null : h('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'run-cancel', onclick: cancel }, 'Cancel'),
    ];
    head.replaceChildren(
      h('div', { class: 'title' },
        h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, h('a', { href: '/ui/' }, 'Runs'), ' / ', kind),
        h('div', { style: 'display:flex;align-items:center;gap:10px;flex-wrap:wrap' },
          h('h1', { 'data-testid': 'run-name' }, name),
          badge(st.state, st.label, { held: st.held, title: st.state === 'pending' ? st.message || st.reason || null : null })),
        h('div', { class: 'meta' },
          owner ? h('span', {}, kind === 'PipelineRun' ? 'Pipeline ' : 'Task ', h('a', { href: `/ui/resources/${ownerKind}/${encodeURIComponent(owner)}` }, h('b', {}, owner))) : null,
          h('span', { title: absoluteTime(start) }, 'Started ', h('b', {}, start ? relativeTime(start) : '—')),
          h('span', {}, 'Duration ', h('b', { 'data-testid': 'run-duration' }, start ? formatDuration(span(start, st.done ? end : null)) : '—')),
          end ? h('span', { title: absoluteTime(end) }, 'Finished ', h('b', {}, absoluteTime(end))) : null),
        st.reason || st.message ? h('div', { class: `message st-${st.state}`, 'data-testid': 'run-message' },
          h('b', {}, st.reason), st.message ? `: ${st.message}` : '') : null),
      h('div', { class: 'actions' }, actions,
        h('a', { class: 'btn', href: runsApi.logsUrl(name, false), target: '_blank', rel: 'noopener' }, 'Raw log')));
  }

  function renderSide() {
    const spec = graph?.spec;
    const given = new Map((run.spec?.params || []).map((p) => [p.name, p.value]));
    const params = [...given].map(([k, v]) => [k, v]);
    for (const p of spec?.params || []) if (!given.has(p.name) && p.default !== undefined) params.push([p.name, p.default, '(default)']);
    const results = run.status?.results || [];
    const tr = selectedTaskRun();
    const blocks = [
      h('section', { class: 'panel', 'aria-label': 'Params' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Params')), kvTable(params, 'run-params')),
      h('section', { class: 'panel', 'aria-label': 'Results' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Results')),
        kvTable(results.map((r) => [r.name, r.value]), 'run-results', runState(run).done ? 'No results' : 'Not yet')),
    ];
    if (tr && kind === 'PipelineRun') {
      blocks.push(h('section', { class: 'panel', 'aria-label': 'Task details' },
        h('div', { class: 'panel-head' }, h('h2', {}, `Task ${sel.task}`)),
        h('h3', {}, 'Params'), kvTable((tr.spec?.params || []).map((p) => [p.name, p.value]), 'task-params'),
        h('h3', {}, 'Results'), kvTable((tr.status?.results || []).map((r) => [r.name, r.value]), 'task-results')));
    }
    side.replaceChildren(...blocks);
  }

  function pickDefault() {
    if (sel.userPicked && graph.byName.has(sel.task)) return;
    const ns = graph.nodes;
    const pick = ns.find((n) => n.state === 'failed') || ns.find((n) => n.state === 'running') || ns.find((n) => n.runs.length) || ns[0];
    sel.task = pick?.name || null;
  }

  function selectedNode() { return graph?.byName.get(sel.task) || null; }
  function selectedTaskRun() {
    const n = selectedNode();
    if (!n || !n.runs.length) return null;
    return n.runs.find((r) => r.metadata?.name === sel.taskRun) || n.runs.find((r) => runState(r).state === 'failed') || n.runs[0];
  }

  function select(task, { user = true } = {}) {
    sel.task = task;
    sel.taskRun = null;
    sel.step = null;
    sel.userPicked = user;
    setQuery({ task, taskrun: null, step: null });
    lastDagSig = '';
    lastTaskSig = '';
    draw();
  }

  function renderDagPanel() {
    const sig = JSON.stringify([sel.task, graph.nodes.map((n) => [n.name, n.state, n.duration === null ? null : Math.round(n.duration / 1000), n.runs.length]), graph.critical]);
    if (sig === lastDagSig) return;
    lastDagSig = sig;
    const focused = document.activeElement?.closest?.('[data-testid="dag-node"]')?.dataset.task;
    dagBody.replaceChildren(renderDag(graph, { selected: sel.task, onSelect: (t) => select(t) }));
    if (focused) dagBody.querySelector(`[data-task="${CSS.escape(focused)}"]`)?.focus();
    const total = graph.critical.reduce((s, n) => s + (graph.byName.get(n)?.duration || 0), 0);
    dagPanel.querySelector('[data-testid="dag-title"]').textContent = graph.single ? 'Task' : 'Pipeline';
    dagPanel.querySelector('[data-testid="dag-summary"]').textContent =
      `${graph.nodes.length} task${graph.nodes.length === 1 ? '' : 's'}${graph.single ? ' (standalone TaskRun)' : ''}`;
    critBox.replaceChildren(graph.critical.length
      ? h('div', {}, h('span', { class: 'label' }, 'Critical path'),
        h('ol', { 'data-testid': 'critical-list' }, graph.critical.map((n) => h('li', { 'data-task': n },
          h('a', { href: `?task=${encodeURIComponent(n)}`, onclick: (e) => { e.preventDefault(); select(n); } }, n),
          ` (${formatDuration(graph.byName.get(n)?.duration)})`))),
        h('span', { class: 'muted' }, ` · ${formatDuration(total)} in total`))
      : h('span', { class: 'muted' }, 'The critical path appears once tasks have run.'));
  }

  function renderTask() {
    const node = selectedNode();
    const tr = selectedTaskRun();
    if (tr) sel.taskRun = tr.metadata?.name;
    const steps = tr || node ? stepsOf(tr, node, store) : [];
    if (!sel.step || !steps.some((s) => s.name === sel.step)) {
      sel.step = (steps.find((s) => s.state === 'failed') || steps.find((s) => s.state === 'running') || steps[0])?.name || null;
    }
    const sig = JSON.stringify([sel, node?.state, node?.duration === null ? null : Math.round((node?.duration || 0) / 1000),
      node?.runs.map((r) => [r.metadata?.name, runState(r).state]), steps, store.error]);
    if (sig !== lastTaskSig) {
      lastTaskSig = sig;
      const focused = document.activeElement?.closest?.('[role="tab"]')?.dataset.step;
      taskHead.replaceChildren(...[
        h('h2', {}, node ? node.name : 'No task selected'),
        node ? badge(node.state) : null,
        node && node.duration !== null ? h('span', { class: 'muted' }, formatDuration(node.duration)) : null,
        tr ? h('span', { class: 'muted mono', 'data-testid': 'taskrun-name' }, tr.metadata?.name) : null].filter(Boolean));
      if (node && node.runs.length > 1) {
        instances.hidden = false;
        instances.replaceChildren(...node.runs.map((r, i) => {
          const st = runState(r).state;
          return h('button', { type: 'button', class: `btn btn-small st-${st}`, 'aria-pressed': String(r === tr), 'data-testid': 'instance',
            'data-taskrun': r.metadata?.name, onclick: () => { sel.taskRun = r.metadata?.name; sel.step = null; setQuery({ taskrun: sel.taskRun, step: null }); draw(); } },
          statusIcon(st), instanceLabel(r, i));
        }));
      } else instances.hidden = true;
      stepTabs.replaceChildren(...steps.map((s) => h('button', {
        type: 'button', role: 'tab', 'aria-selected': String(s.name === sel.step), tabindex: s.name === sel.step ? 0 : -1,
        'data-testid': 'step-tab', 'data-step': s.name, 'data-status': s.state, class: `st-${s.state}`,
        onclick: () => { sel.step = s.name; setQuery({ step: s.name }); draw(); },
        onkeydown: (e) => {
          const i = steps.findIndex((x) => x.name === s.name);
          const j = e.key === 'ArrowRight' ? i + 1 : e.key === 'ArrowLeft' ? i - 1 : null;
          if (j === null || !steps[j]) return;
          sel.step = steps[j].name;
          setQuery({ step: sel.step });
          draw();
          stepTabs.querySelector(`[data-step="${CSS.escape(sel.step)}"]`)?.focus();
        },
      }, statusIcon(s.state), h('span', { style: 'color:var(--text)' }, s.name),
      s.duration !== null ? h('span', { class: 'dur' }, formatDuration(s.duration)) : null,
      s.exitCode ? h('span', { class: 'dur' }, `exit ${s.exitCode}`) : null)));
      if (focused) stepTabs.querySelector(`[data-step="${CSS.escape(focused)}"]`)?.focus();
    }
    const note = !node ? 'Select a task in the graph.'
      : !tr && node.state === 'skipped' ? `Skipped${node.skipReason ? `: ${node.skipReason}` : ''}.`
        : !tr ? 'This task has not started yet.' : !steps.length ? 'This TaskRun has no steps yet.' : '';
    taskNote.hidden = !note;
    taskNote.textContent = note;
    logHolder.hidden = !!note;
    if (!note) viewer.show(tr.metadata?.name, sel.step, steps.find((s) => s.name === sel.step)?.state || 'pending');
  }

  function draw() {
    if (!run || !graph) return;
    renderHead();
    renderDagPanel();
    renderTask();
    renderSide();
  }

  async function pipelineSpec() {
    const s = run.status?.pipelineSpec || run.spec?.pipelineSpec;
    if (s) return s;
    const ref = run.spec?.pipelineRef?.name;
    if (!ref || pipelineFromRef === null) return null;
    if (pipelineFromRef) return pipelineFromRef;
    try { pipelineFromRef = (await api(`${RESOURCE_BASE.pipelines}/${encodeURIComponent(ref)}`)).spec || null; }
    catch { pipelineFromRef = null; }
    return pipelineFromRef;
  }

  async function load() {
    if (kind !== 'TaskRun') {
      try { run = await runsApi.pipelineRun(name); kind = 'PipelineRun'; }
      catch (e) { if (!(e instanceof ApiError && e.code === 404) || kind === 'PipelineRun') throw e; }
    }
    if (kind !== 'PipelineRun') { run = await runsApi.taskRun(name); kind = 'TaskRun'; }
    const st = runState(run);
    if (kind === 'PipelineRun') {
      children = (await runsApi.children(name).catch(() => ({ items: [] }))).items || [];
      let spec = await pipelineSpec();
      // Without the pipeline's definition, draw the tasks that ran.
      if (!spec) spec = { tasks: [...new Set(children.map((c) => c.metadata?.labels?.['tekton.dev/pipelineTask']).filter(Boolean))].map((n) => ({ name: n })) };
      graph = buildGraph(spec, { runName: name, taskRuns: children, childReferences: run.status?.childReferences || [], skipped: run.status?.skippedTasks || [], runDone: st.done });
      graph.spec = spec;
    } else {
      children = [run];
      graph = singleTaskGraph(run);
      graph.spec = run.status?.taskSpec || run.spec?.taskSpec;
    }
    pickDefault();
    banner.hidden = true;
    draw();
    yamlBox.querySelector('pre').textContent = toYaml(run);
    return st.done;
  }

  async function poll() {
    if (stopped) return;
    let done = false;
    try { done = await load(); }
    catch (e) {
      if (stopped) return;
      banner.hidden = false;
      banner.textContent = e instanceof ApiError && e.code === 404 ? `No run named ${name}.` : `Could not load the run: ${describeError(e)}`;
      if (e instanceof ApiError && e.code === 404) { store.stop(); return; }
    }
    if (stopped) return;
    // Keep polling while the run goes on, and a little after it ends (the last TaskRuns settle).
    if (done) finalLoads += 1;
    if (!done || finalLoads < 2) timer = setTimeout(poll, document.visibilityState === 'visible' ? POLL_MS : POLL_MS * 5);
  }

  // New steps appear in the logs before the status says so: redraw the tabs when they do.
  const unsub = store.subscribe((k) => {
    if (k === null || !graph) { if (graph) renderTask(); return; }
    const [tr, step] = k.split('\u0000');
    if (tr === sel.taskRun && !stepTabs.querySelector(`[data-step="${CSS.escape(step)}"]`)) renderTask();
  });

  async function rerun() {
    try {
      const created = await runsApi.rerun(name);
      const n = created?.metadata?.name;
      if (n) navigate(`/ui/runs/${encodeURIComponent(n)}`);
      else toast('Started a new run', 'ok');
    } catch (e) { toast(`Run again failed: ${describeError(e, 'Run again')}`, 'error'); }
  }

  async function release() {
    if (releasing) return;
    releasing = 'busy';
    if (run) renderHead();
    try { await runsApi.release(name); releasing = 'done'; toast(`Released ${name}`, 'ok'); }
    catch (e) { releasing = null; toast(`Release failed: ${describeError(e, 'Release')}`, 'error'); }
    if (stopped) return;
    clearTimeout(timer);
    finalLoads = 0;
    poll();
  }

  async function cancel() {
    if (!(await confirmDialog(`Cancel ${name}?`, 'Running tasks are stopped; finally tasks still run.', 'Cancel run'))) return;
    try { await runsApi.cancel(name); toast(`Cancelling ${name}`, 'ok'); clearTimeout(timer); finalLoads = 0; poll(); }
    catch (e) { toast(`Cancel failed: ${describeError(e, 'Cancel')}`, 'error'); }
  }

  poll();
  return () => { stopped = true; clearTimeout(timer); unsub(); viewer.destroy(); store.stop(); };
}
