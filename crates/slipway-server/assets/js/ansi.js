// ANSI escape sequences in log lines → HTML spans. Handles SGR (colours: 16, 256 and true colour;
// bold, dim, italic, underline, inverse) and drops every other escape (cursor moves, OSC titles).
// Text is HTML-escaped; the state carries over from line to line, as in a terminal.
import { escapeHtml } from './dom.js';

// CSI ... final byte, OSC ... BEL/ST, and lone two-byte escapes.
const ESCAPES = /\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

export function newState() {
  return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false };
}

const PALETTE_256 = (() => {
  const base = ['#000000', '#cd3131', '#0dbc79', '#e5e510', '#2472c8', '#bc3fbc', '#11a8cd', '#e5e5e5',
    '#666666', '#f14c4c', '#23d18b', '#f5f543', '#3b8eea', '#d670d6', '#29b8db', '#ffffff'];
  const out = base.slice();
  const steps = [0, 95, 135, 175, 215, 255];
  for (let r = 0; r < 6; r++) for (let g = 0; g < 6; g++) for (let b = 0; b < 6; b++) out.push(rgb(steps[r], steps[g], steps[b]));
  for (let i = 0; i < 24; i++) { const v = 8 + i * 10; out.push(rgb(v, v, v)); }
  return out;
})();

function rgb(r, g, b) { return `rgb(${r},${g},${b})`; }

function applySgr(st, params) {
  const p = params === '' ? [0] : params.split(/[;:]/).map((x) => (x === '' ? 0 : Number(x)));
  for (let i = 0; i < p.length; i++) {
    const n = p[i];
    if (n === 0) Object.assign(st, newState());
    else if (n === 1) st.bold = true;
    else if (n === 2) st.dim = true;
    else if (n === 3) st.italic = true;
    else if (n === 4) st.underline = true;
    else if (n === 7) st.inverse = true;
    else if (n === 22) { st.bold = false; st.dim = false; }
    else if (n === 23) st.italic = false;
    else if (n === 24) st.underline = false;
    else if (n === 27) st.inverse = false;
    else if (n >= 30 && n <= 37) st.fg = n - 30;
    else if (n >= 90 && n <= 97) st.fg = n - 90 + 8;
    else if (n === 39) st.fg = null;
    else if (n >= 40 && n <= 47) st.bg = n - 40;
    else if (n >= 100 && n <= 107) st.bg = n - 100 + 8;
    else if (n === 49) st.bg = null;
    else if (n === 38 || n === 48) {
      let color = null;
      if (p[i + 1] === 5 && p[i + 2] !== undefined) { color = p[i + 2] < 16 ? p[i + 2] : PALETTE_256[p[i + 2]] || null; i += 2; }
      else if (p[i + 1] === 2 && p[i + 4] !== undefined) { color = rgb(p[i + 2], p[i + 3], p[i + 4]); i += 4; }
      if (n === 38) st.fg = color; else st.bg = color;
    }
  }
}

function open(st) {
  const cls = [];
  const style = [];
  let { fg, bg } = st;
  if (st.inverse) { [fg, bg] = [bg ?? 7, fg ?? 0]; }
  if (st.bold) { cls.push('ansi-bold'); if (typeof fg === 'number' && fg < 8) fg += 8; }
  if (st.dim) cls.push('ansi-dim');
  if (st.italic) cls.push('ansi-italic');
  if (st.underline) cls.push('ansi-underline');
  if (typeof fg === 'number') cls.push(`ansi-fg-${fg}`); else if (fg) style.push(`color:${fg}`);
  if (typeof bg === 'number') cls.push(`ansi-bg-${bg}`); else if (bg) style.push(`background:${bg}`);
  if (!cls.length && !style.length) return '';
  return `<span${cls.length ? ` class="${cls.join(' ')}"` : ''}${style.length ? ` style="${style.join(';')}"` : ''}>`;
}

/** Renders one line to HTML, updating `state` (from newState()) for the next line. */
export function ansiToHtml(line, state = newState()) {
  let out = '';
  let last = 0;
  let span = open(state);
  out += span;
  ESCAPES.lastIndex = 0;
  for (let m; (m = ESCAPES.exec(line));) {
    out += escapeHtml(line.slice(last, m.index));
    last = ESCAPES.lastIndex;
    if (m[2] !== 'm') continue;
    applySgr(state, m[1]);
    if (span) out += '</span>';
    span = open(state);
    out += span;
  }
  out += escapeHtml(line.slice(last).replace(/\r/g, ''));
  if (span) out += '</span>';
  return out;
}

/** The text of a line without escapes (for downloads and search). */
export function stripAnsi(line) {
  return line.replace(ESCAPES, '');
}
