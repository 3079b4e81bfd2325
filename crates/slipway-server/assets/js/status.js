// Maps Tekton conditions to the five states users know from CI dashboards.
import { svg } from './dom.js';

const CANCELLED = new Set(['Cancelled', 'PipelineRunCancelled', 'TaskRunCancelled', 'StoppedRunFinally',
  'CancelledRunFinally', 'Interrupted', 'Stopped']);
const PENDING = new Set(['Pending', 'PipelineRunPending', 'TaskRunPending', 'Queued']);

export const LABELS = { succeeded: 'Succeeded', failed: 'Failed', running: 'Running', pending: 'Pending',
  cancelled: 'Cancelled', skipped: 'Skipped' };

/** `spec.status` of a PipelineRun created held: it waits until the field is cleared. */
export const HELD = 'PipelineRunPending';

/**
 * The state of a PipelineRun or TaskRun: {state, label, reason, message, done, held}. A held run
 * (pending with `spec.status: PipelineRunPending`) is in state 'pending' with the label 'Held'.
 */
export function runState(obj) {
  const c = obj?.status?.conditions?.find((x) => x.type === 'Succeeded') ?? obj?.status?.conditions?.[0];
  if (!c) {
    // A run being written has no status yet; a finished one always has its condition.
    return { state: obj?.status?.completionTime ? 'succeeded' : 'running', label: 'Running', reason: '', message: '', done: false, held: false };
  }
  const reason = c.reason || '';
  let state;
  if (c.status === 'True') state = 'succeeded';
  else if (c.status === 'False') state = CANCELLED.has(reason) || /cancel/i.test(reason) ? 'cancelled' : 'failed';
  else state = PENDING.has(reason) ? 'pending' : 'running';
  const held = state === 'pending' && obj?.spec?.status === HELD;
  const label = held ? 'Held' : state === 'cancelled' && reason ? reason.replace(/^(PipelineRun|TaskRun)/, '') : LABELS[state];
  return { state, label, reason, message: c.message || '', done: c.status === 'True' || c.status === 'False', held };
}

/** The state of a step from its container state. */
export function stepState(step, taskDone) {
  if (!step) return taskDone ? 'skipped' : 'pending';
  if (step.terminated) {
    const t = step.terminated;
    if (t.exitCode === 0) return 'succeeded';
    return /cancel/i.test(t.reason || '') ? 'cancelled' : 'failed';
  }
  if (step.running) return 'running';
  return taskDone ? 'skipped' : 'pending';
}

const ICONS = {
  succeeded: ['M5 10.5l3 3 7-7'],
  failed: ['M6.5 6.5l7 7M13.5 6.5l-7 7'],
  cancelled: ['M6 10h8'],
  skipped: ['M7 6l6 4-6 4z'],
  pending: ['M10 6v4l2.5 2'],
  held: ['M8 6.5v7M12 6.5v7'],
};

/** A status icon as inline SVG, coloured by the surrounding `st-*` class ('held' draws a pause sign). */
export function statusIcon(state, title) {
  const icon = svg('svg', { class: 'status-icon', viewBox: '0 0 20 20', 'aria-hidden': title ? null : 'true', role: title ? 'img' : null });
  if (title) icon.append(svg('title', {}, title));
  if (state === 'running') {
    icon.append(svg('circle', { cx: 10, cy: 10, r: 7.5, fill: 'none', stroke: 'currentColor', 'stroke-width': 2.5, opacity: 0.25 }));
    icon.append(svg('path', { d: 'M10 2.5a7.5 7.5 0 0 1 7.5 7.5', fill: 'none', stroke: 'currentColor', 'stroke-width': 2.5, 'stroke-linecap': 'round' }));
    return icon;
  }
  icon.append(svg('circle', { cx: 10, cy: 10, r: 8.5, fill: 'none', stroke: 'currentColor', 'stroke-width': 2 }));
  for (const d of ICONS[state] || ICONS.pending) {
    icon.append(svg('path', { d, fill: state === 'skipped' ? 'currentColor' : 'none', stroke: 'currentColor', 'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round' }));
  }
  return icon;
}
