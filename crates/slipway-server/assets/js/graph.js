// The pipeline as a graph: nodes from status.pipelineSpec with the state of their TaskRuns, edges
// from runAfter and from $(tasks.X.results...) / $(tasks.X.status) references, columns for
// drawing, and the critical path. Pure functions, no DOM.
import { runState } from './status.js';
import { parseTime } from './format.js';

const REF = /\$\(\s*tasks\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(results|status)\b/gi;

function refsIn(value, out) {
  const text = JSON.stringify(value ?? null);
  for (const m of text.matchAll(REF)) out.add(m[1]);
}

function aggregate(runs) {
  const states = runs.map((r) => runState(r).state);
  for (const s of ['running', 'failed', 'cancelled', 'pending']) if (states.includes(s)) return s;
  return 'succeeded';
}

/**
 * Builds the graph. taskRuns: the run's TaskRuns (matched to pipeline tasks by the
 * tekton.dev/pipelineTask label, else by childReferences); skipped: status.skippedTasks.
 */
export function buildGraph(spec, { runName = '', taskRuns = [], childReferences = [], skipped = [], runDone = false, now = Date.now() } = {}) {
  const tasks = (spec?.tasks || []).map((t) => ({ t, fin: false }));
  const fins = (spec?.finally || []).map((t) => ({ t, fin: true }));
  const all = [...tasks, ...fins];
  const names = new Set(all.map(({ t }) => t.name));
  const byChild = new Map(childReferences.map((c) => [c.name, c.pipelineTaskName]));
  const runsOf = new Map();
  for (const tr of taskRuns) {
    const task = tr.metadata?.labels?.['tekton.dev/pipelineTask'] || byChild.get(tr.metadata?.name) || taskFromName(tr.metadata?.name, runName, names);
    if (!task) continue;
    if (!runsOf.has(task)) runsOf.set(task, []);
    runsOf.get(task).push(tr);
  }
  const skippedBy = new Map(skipped.map((s) => [s.name, s.reason || 'Skipped']));

  const nodes = all.map(({ t, fin }, index) => {
    const runs = (runsOf.get(t.name) || []).sort((a, b) => (a.metadata?.name || '').localeCompare(b.metadata?.name || '', undefined, { numeric: true }));
    let state;
    if (runs.length) state = aggregate(runs);
    else state = skippedBy.has(t.name) || runDone ? 'skipped' : 'pending';
    const starts = runs.map((r) => parseTime(r.status?.startTime)).filter((x) => x !== null);
    const ends = runs.map((r) => parseTime(r.status?.completionTime));
    const start = starts.length ? Math.min(...starts) : null;
    const finished = runs.length > 0 && ends.every((x) => x !== null);
    const end = finished ? Math.max(...ends) : start !== null ? now : null;
    const data = new Set();
    refsIn([t.params, t.matrix, t.when], data);
    const order = new Set((t.runAfter || []).filter((n) => names.has(n)));
    data.delete(t.name);
    return {
      name: t.name, index, finally: fin, task: t, runs, state,
      skipReason: skippedBy.get(t.name) || '',
      start, end, duration: start !== null && end !== null ? end - start : null,
      order, data: new Set([...data].filter((n) => names.has(n))),
      matrix: !!t.matrix,
    };
  });
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const edges = [];
  for (const n of nodes) {
    for (const d of new Set([...n.order, ...n.data])) {
      edges.push({ from: d, to: n.name, kind: n.order.has(d) ? 'order' : 'data' });
    }
  }
  layout(nodes, byName);
  const critical = criticalPath(nodes, byName);
  return { nodes, edges, byName, critical };
}

/** A graph of one node for a standalone TaskRun. */
export function singleTaskGraph(taskRun, now = Date.now()) {
  const name = taskRun.spec?.taskRef?.name || taskRun.metadata?.name || 'task';
  const st = runState(taskRun);
  const start = parseTime(taskRun.status?.startTime);
  const endT = parseTime(taskRun.status?.completionTime);
  const end = endT ?? (start !== null ? now : null);
  const node = { name, index: 0, finally: false, task: {}, runs: [taskRun], state: st.state, skipReason: '', start, end,
    duration: start !== null && end !== null ? end - start : null, order: new Set(), data: new Set(), matrix: false, col: 0, row: 0 };
  return { nodes: [node], edges: [], byName: new Map([[name, node]]), critical: start !== null ? [name] : [], single: true };
}

/** A TaskRun still being written may carry no labels: its name is RUN-TASK or RUN-TASK-N. */
function taskFromName(trName, runName, names) {
  if (!trName || !runName || !trName.startsWith(`${runName}-`)) return null;
  const rest = trName.slice(runName.length + 1);
  if (names.has(rest)) return rest;
  const m = /^(.*)-\d+$/.exec(rest);
  return m && names.has(m[1]) ? m[1] : null;
}

function deps(n) { return [...new Set([...n.order, ...n.data])]; }

/** Columns: the longest chain of dependencies before a task; finally tasks after everything. */
function layout(nodes, byName) {
  const level = new Map();
  const visiting = new Set();
  const depth = (n) => {
    if (level.has(n.name)) return level.get(n.name);
    if (visiting.has(n.name)) return 0; // a cycle: the server reports it; draw something anyway
    visiting.add(n.name);
    const ds = deps(n).map((d) => byName.get(d)).filter((d) => d && !d.finally);
    const l = ds.length ? Math.max(...ds.map(depth)) + 1 : 0;
    visiting.delete(n.name);
    level.set(n.name, l);
    return l;
  };
  const main = nodes.filter((n) => !n.finally);
  for (const n of main) n.col = depth(n);
  const finCol = main.length ? Math.max(...main.map((n) => n.col)) + 1 : 0;
  for (const n of nodes.filter((x) => x.finally)) n.col = finCol;
  // Rows: declaration order in the first column, then the mean row of each task's parents
  // (a barycentre pass), which keeps most edges short and uncrossed.
  const cols = [];
  for (const n of nodes) (cols[n.col] ||= []).push(n);
  for (const col of cols) {
    if (!col) continue;
    for (const n of col) {
      const ps = deps(n).map((d) => byName.get(d)).filter((p) => p && p.row !== undefined);
      n.bary = ps.length ? ps.reduce((s, p) => s + p.row, 0) / ps.length : n.index / 1000;
    }
    col.sort((a, b) => a.bary - b.bary || a.index - b.index);
    col.forEach((n, i) => { n.row = i; });
  }
}

/**
 * The critical path: the chain of tasks, each waiting on the previous one, whose durations add
 * up to the most, ending at the task that finished last (the run's end). Finally tasks wait on
 * every task that ran. Returns task names from first to last.
 */
export function criticalPath(nodes, byName) {
  const ran = nodes.filter((n) => n.start !== null && n.end !== null);
  if (!ran.length) return [];
  const ranSet = new Set(ran.map((n) => n.name));
  const preds = (n) => {
    const ds = deps(n).filter((d) => ranSet.has(d));
    if (n.finally) for (const m of ran) if (!m.finally && !ds.includes(m.name)) ds.push(m.name);
    return ds.map((d) => byName.get(d));
  };
  const dist = new Map();
  const visiting = new Set();
  const go = (n) => {
    if (dist.has(n.name)) return dist.get(n.name);
    if (visiting.has(n.name)) return 0;
    visiting.add(n.name);
    const ps = preds(n);
    const d = (n.duration || 0) + (ps.length ? Math.max(...ps.map(go)) : 0);
    visiting.delete(n.name);
    dist.set(n.name, d);
    return d;
  };
  ran.forEach(go);
  const better = (a, b) => (a.end - b.end) || (dist.get(a.name) - dist.get(b.name)) || (a.col - b.col);
  let cur = ran.reduce((best, n) => (better(n, best) > 0 ? n : best));
  const path = [cur.name];
  const seen = new Set(path);
  for (;;) {
    const ps = preds(cur).filter((p) => !seen.has(p.name));
    if (!ps.length) break;
    cur = ps.reduce((best, p) => (better(p, best) > 0 ? p : best));
    path.unshift(cur.name);
    seen.add(cur.name);
  }
  return path;
}
