// Draws the graph from graph.js as SVG: nodes coloured by state with durations, edges (solid for
// runAfter, dashed for result references), finally tasks boxed in their own column, and the
// critical path in a highlight colour. Nodes are keyboard-focusable buttons.
import { svg, h } from './dom.js';
import { statusIcon, LABELS } from './status.js';
import { formatDuration } from './format.js';

const W = 196;
const H = 56;
const COL_GAP = 56;
const ROW_GAP = 18;
const PAD = 14;
const FIN_GAP = 28;

function truncate(s, n) { return s.length > n ? `${s.slice(0, n - 1)}…` : s; }

function position(n, rowsInCol, maxRows, finX) {
  const colHeight = rowsInCol * H + (rowsInCol - 1) * ROW_GAP;
  const total = maxRows * H + (maxRows - 1) * ROW_GAP;
  const x = PAD + n.col * (W + COL_GAP) + (n.finally ? finX : 0);
  const y = PAD + 20 + (total - colHeight) / 2 + n.row * (H + ROW_GAP);
  return { x, y };
}

/** Renders the graph; onSelect(name) is called when a node is clicked or activated by keyboard. */
export function renderDag(graph, { selected, onSelect }) {
  const { nodes, edges, critical } = graph;
  const counts = [];
  for (const n of nodes) counts[n.col] = (counts[n.col] || 0) + 1;
  const maxRows = Math.max(1, ...counts.filter(Boolean));
  const hasFinally = nodes.some((n) => n.finally);
  const finX = hasFinally ? FIN_GAP : 0;
  const pos = new Map(nodes.map((n) => [n.name, position(n, counts[n.col], maxRows, finX)]));
  const cols = counts.length;
  const width = PAD * 2 + cols * W + (cols - 1) * COL_GAP + finX + (hasFinally ? 12 : 0);
  const height = PAD * 2 + 20 + maxRows * H + (maxRows - 1) * ROW_GAP;
  const crit = new Set(critical);
  const critPairs = new Set(critical.slice(1).map((n, i) => `${critical[i]}→${n}`));

  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': 'Pipeline graph', 'data-testid': 'dag' });
  root.append(svg('defs', {},
    svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      svg('path', { d: 'M0 0L10 5L0 10z', fill: 'var(--muted)' })),
    svg('marker', { id: 'arrow-crit', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' },
      svg('path', { d: 'M0 0L10 5L0 10z', fill: 'var(--crit)' }))));

  if (hasFinally) {
    const fin = nodes.filter((n) => n.finally);
    const x = pos.get(fin[0].name).x - 12;
    const ys = fin.map((n) => pos.get(n.name).y);
    root.append(svg('rect', { class: 'dag-finally', x, y: Math.min(...ys) - 24, width: W + 24, height: Math.max(...ys) - Math.min(...ys) + H + 36, rx: 8 }));
    root.append(svg('text', { class: 'dag-finally-label', x: x + 10, y: Math.min(...ys) - 9 }, 'finally'));
  }

  const link = (from, to, cls, testid, attrs = {}) => {
    const a = pos.get(from);
    const b = pos.get(to);
    const x1 = a.x + W;
    const y1 = a.y + H / 2;
    const x2 = b.x - 2;
    const y2 = b.y + H / 2;
    const dx = Math.max(30, (x2 - x1) / 2);
    const critEdge = cls.includes('critical');
    // A wait that skips columns dips under the nodes in between instead of crossing them.
    const dip = cls.includes('implicit') && x2 - x1 > W + COL_GAP * 2 ? Math.max(y1, y2) + 48 : null;
    const d = dip === null ? `M${x1} ${y1}C${x1 + dx} ${y1} ${x2 - dx} ${y2} ${x2} ${y2}`
      : `M${x1} ${y1}C${x1 + 40} ${dip} ${x2 - 40} ${dip} ${x2} ${y2}`;
    return svg('path', { class: `dag-edge ${cls}`, d,
      'marker-end': critEdge ? 'url(#arrow-crit)' : 'url(#arrow)', 'data-testid': testid, 'data-from': from, 'data-to': to, ...attrs });
  };
  const drawnPairs = new Set();
  for (const e of edges) {
    const key = `${e.from}→${e.to}`;
    const isCrit = critPairs.has(key);
    drawnPairs.add(key);
    root.append(link(e.from, e.to, `${e.kind}${isCrit ? ' critical' : ''}`, 'dag-edge', { 'data-kind': e.kind, 'data-critical': String(isCrit) }));
  }
  // Finally tasks wait for the whole DAG: show that wait when it is on the critical path.
  for (const key of critPairs) {
    if (drawnPairs.has(key)) continue;
    const [from, to] = key.split('→');
    root.append(link(from, to, 'implicit critical', 'dag-edge-implicit', { 'data-critical': 'true' }));
  }

  for (const n of nodes) {
    const { x, y } = pos.get(n.name);
    const label = LABELS[n.state];
    const dur = n.duration !== null ? formatDuration(n.duration) : '';
    const sub = n.state === 'skipped' ? truncate(n.skipReason || 'Skipped', 26)
      : [dur || label, n.runs.length > 1 ? `${n.runs.length} runs` : n.matrix ? 'matrix' : ''].filter(Boolean).join(' · ');
    const isSel = selected === n.name;
    const g = svg('g', {
      class: `dag-node st-${n.state}${crit.has(n.name) ? ' critical' : ''}${isSel ? ' selected' : ''}`,
      transform: `translate(${x} ${y})`, tabindex: 0, role: 'button',
      'aria-label': `${n.name}: ${label}${dur ? `, ${dur}` : ''}${crit.has(n.name) ? ', on the critical path' : ''}`,
      'aria-pressed': String(isSel),
      'data-testid': 'dag-node', 'data-task': n.name, 'data-status': n.state, 'data-critical': String(crit.has(n.name)),
      'data-finally': String(n.finally), 'data-duration': n.duration ?? '',
      onclick: () => onSelect(n.name),
      onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onSelect(n.name); } },
    },
    svg('title', {}, `${n.name} — ${label}${dur ? ` in ${dur}` : ''}${n.runs.length > 1 ? ` (${n.runs.length} TaskRuns)` : ''}${n.skipReason ? `: ${n.skipReason}` : ''}`),
    isSel ? svg('rect', { class: 'sel-ring', x: -4, y: -4, width: W + 8, height: H + 8, rx: 10 }) : null,
    svg('rect', { class: 'box', width: W, height: H, rx: 7 }),
    svg('rect', { class: 'bar', width: 5, height: H - 2, x: 1, y: 1, rx: 2 }));
    const icon = statusIcon(n.state);
    icon.setAttribute('x', 14);
    icon.setAttribute('y', 11);
    icon.setAttribute('width', 16);
    icon.setAttribute('height', 16);
    const iconWrap = svg('g', { class: `st-${n.state}` });
    iconWrap.append(icon);
    g.append(iconWrap,
      svg('text', { x: 38, y: 24 }, truncate(n.name, 20)),
      svg('text', { class: 'sub', x: 38, y: 43, 'data-testid': 'dag-node-sub' }, sub));
    if (crit.has(n.name)) g.append(svg('circle', { cx: W - 12, cy: 12, r: 4, fill: 'var(--crit)' }, svg('title', {}, 'On the critical path')));
    root.append(g);
  }
  return h('div', { class: 'dag' }, root);
}
