// Formatting of times and durations the way CI dashboards show them.

export function parseTime(t) {
  if (!t) return null;
  const ms = typeof t === 'number' ? t : Date.parse(t);
  return Number.isNaN(ms) ? null : ms;
}

/** "12s ago", "5m ago", "3h ago", "2d ago". */
export function relativeTime(t, now = Date.now()) {
  const ms = parseTime(t);
  if (ms === null) return '—';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ago`;
  const hr = Math.floor(m / 60);
  if (hr < 24) return `${hr}h ago`;
  const d = Math.floor(hr / 24);
  return d < 30 ? `${d}d ago` : new Date(ms).toLocaleDateString();
}

export function absoluteTime(t) {
  const ms = parseTime(t);
  return ms === null ? '' : new Date(ms).toLocaleString();
}

/** "<1s", "42s", "3m 05s", "1h 02m". */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return '<1s';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** Duration between two times; a missing end counts as now (still running). */
export function span(start, end, now = Date.now()) {
  const a = parseTime(start);
  if (a === null) return null;
  const b = parseTime(end) ?? now;
  return Math.max(0, b - a);
}
