// The YAML editor: a transparent <textarea> over a highlighted <pre>, with a line-number gutter.
// Server diagnostics (debounced while typing) show as wavy underlines and gutter markers;
// Ctrl-Space or typing a key opens completion of Tekton fields, values and snippets; hovering a
// key shows its docs, hovering an underline its message. Tab indents; Esc then Tab leaves.
import { h, escapeHtml } from './dom.js';
import { analyze, keyAt, lineCol } from './yaml-context.js';
import { tokens } from './yaml-highlight.js';
import { completionsAt, typeLabel } from './completions.js';
import { resolvePath } from './tekton-schema.js';

const PAD_TOP = 8;
const PAD_LEFT = 12;
const LINE_H = 20;
const VALIDATE_MS = 300;
let editors = 0;

/** Per-line ranges of each diagnostic (1-based line/column in, 0-based out). */
function diagRanges(diags, lines) {
  const byLine = new Map();
  for (const d of diags) {
    const n = lines.length;
    const l0 = Math.min(Math.max((d.line || 1) - 1, 0), n - 1);
    const l1 = Math.min(Math.max((d.endLine || d.line || 1) - 1, l0), n - 1);
    for (let i = l0; i <= l1; i++) {
      const t = lines[i].text;
      let from = i === l0 ? Math.max((d.column || 1) - 1, 0) : lines[i].indent;
      let to;
      if (i === l1 && d.endColumn && (d.endLine || d.line) - 1 === i) to = d.endColumn - 1;
      else if (i < l1) to = t.length;
      else {
        // No end: the word at the start (a key, or a value).
        if (!d.column) from = lines[i].indent;
        const m = /^[^\s:]+/.exec(t.slice(from));
        to = m ? from + m[0].length : t.length;
      }
      from = Math.min(from, t.length);
      to = Math.min(Math.max(to, from), t.length);
      if (!byLine.has(i)) byLine.set(i, []);
      byLine.get(i).push({ from, to, d });
    }
  }
  return byLine;
}

function lineHtml(ln, ranges) {
  const t = ln.text;
  const toks = tokens(ln);
  const cuts = new Set([0, t.length]);
  for (const k of toks) { cuts.add(k.from); cuts.add(k.to); }
  for (const r of ranges) { cuts.add(r.from); cuts.add(r.to); }
  const pts = [...cuts].filter((x) => x >= 0 && x <= t.length).sort((a, b) => a - b);
  let out = '';
  for (let i = 0; i + 1 < pts.length; i++) {
    const [a, b] = [pts[i], pts[i + 1]];
    if (a === b) continue;
    const tok = toks.find((k) => k.from <= a && k.to >= b);
    const covering = ranges.filter((r) => r.from <= a && r.to >= b && r.to > r.from);
    const sev = covering.some((r) => r.d.severity !== 'warning') ? 'error' : covering.length ? 'warning' : '';
    const cls = [tok?.cls, sev && `squiggle-${sev}`].filter(Boolean).join(' ');
    const text = escapeHtml(t.slice(a, b));
    out += cls ? `<span class="${cls}"${sev ? ` data-testid="diag-marker" data-severity="${sev}"` : ''}>${text}</span>` : text;
  }
  // A problem with no width (e.g. a missing field at the end of a line) still gets a mark.
  for (const r of ranges) {
    if (r.to > r.from) continue;
    const sev = r.d.severity === 'warning' ? 'warning' : 'error';
    out += `<span class="squiggle-empty" data-testid="diag-marker" data-severity="${sev}"> </span>`;
    break;
  }
  return out;
}

export function createEditor({ value = '', validate, onDiagnostics, onChange, onSave, label = 'YAML' } = {}) {
  const id = `ed${++editors}`;
  let diags = [];
  let ranges = new Map();
  let lines = [];
  let vTimer = null;
  let vSeq = 0;
  let comp = null; // {from, items, index}
  let escapeArmed = false;

  const code = h('code');
  const pre = h('pre', { 'aria-hidden': 'true' }, code);
  const ta = h('textarea', { spellcheck: false, autocapitalize: 'off', autocomplete: 'off', wrap: 'off', 'aria-label': label,
    'data-testid': 'editor-input', 'aria-autocomplete': 'list', 'aria-controls': `${id}-list`, 'aria-expanded': 'false',
    'aria-describedby': `${id}-keys` });
  const gutterInner = h('div');
  const gutter = h('div', { class: 'editor-gutter', 'aria-hidden': 'true' }, gutterInner);
  const list = h('ul', { class: 'completion', role: 'listbox', id: `${id}-list`, hidden: true, 'data-testid': 'completion', 'aria-label': 'Completions' });
  const docBox = h('div', { class: 'completion-doc', hidden: true, 'data-testid': 'completion-doc' });
  const tip = h('div', { class: 'tooltip', role: 'tooltip', hidden: true, 'data-testid': 'editor-tooltip', id: `${id}-tip` });
  const codeBox = h('div', { class: 'editor-code' }, pre, ta);
  const el = h('div', { class: 'editor', 'data-testid': 'yaml-editor' }, gutter, codeBox, list, docBox, tip,
    h('span', { id: `${id}-keys`, class: 'visually-hidden' }, 'Ctrl+Space completes, Ctrl+S saves, Escape then Tab leaves the editor.'));
  ta.value = value;

  let cw = 7.8;
  const measure = () => {
    const probe = h('span', { style: 'position:absolute;visibility:hidden;white-space:pre' }, 'x'.repeat(100));
    pre.append(probe);
    const w = probe.getBoundingClientRect().width / 100;
    probe.remove();
    if (w > 0) cw = w;
  };

  function render() {
    lines = analyze(ta.value);
    ranges = diagRanges(diags, lines);
    code.innerHTML = lines.map((ln, i) => lineHtml(ln, ranges.get(i) || [])).join('\n') + '\n';
    const frag = document.createDocumentFragment();
    lines.forEach((_, i) => {
      const rs = ranges.get(i);
      const gl = h('div', { class: `gl${rs ? ' has-diag' : ''}` }, String(i + 1));
      if (rs) {
        const sev = rs.some((r) => r.d.severity !== 'warning') ? 'error' : 'warning';
        gl.prepend(h('span', { class: `gutter-marker ${sev}`, 'data-testid': 'gutter-marker', 'data-severity': sev,
          title: [...new Set(rs.map((r) => r.d.message))].join('\n') }));
      }
      frag.append(gl);
    });
    gutterInner.replaceChildren(frag);
    gutterInner.style.paddingTop = `${PAD_TOP}px`;
    syncScroll();
  }

  function syncScroll() {
    pre.scrollTop = ta.scrollTop;
    pre.scrollLeft = ta.scrollLeft;
    gutterInner.style.transform = `translateY(${-ta.scrollTop}px)`;
  }

  function scheduleValidate() {
    if (!validate) return;
    clearTimeout(vTimer);
    vTimer = setTimeout(async () => {
      const seq = ++vSeq;
      const text = ta.value;
      let result;
      try { result = await validate(text); } catch { return; }
      if (seq !== vSeq || text !== ta.value || !result) return;
      setDiagnostics(result);
    }, VALIDATE_MS);
  }

  function setDiagnostics(list2) {
    diags = Array.isArray(list2) ? list2 : [];
    render();
    onDiagnostics?.(diags);
  }

  // ---- editing helpers ----
  function insert(text, from = ta.selectionStart, to = ta.selectionEnd) {
    const marker = text.indexOf('§');
    const clean = text.replace('§', '');
    ta.focus();
    ta.setSelectionRange(from, to);
    // execCommand keeps the browser's undo history; setRangeText is the fallback.
    if (!document.execCommand('insertText', false, clean)) {
      ta.setRangeText(clean, from, to, 'end');
      ta.dispatchEvent(new Event('input'));
    }
    if (marker >= 0) ta.setSelectionRange(from + marker, from + marker);
  }

  function currentLine() {
    const pos = ta.selectionStart;
    const start = ta.value.lastIndexOf('\n', pos - 1) + 1;
    let end = ta.value.indexOf('\n', pos);
    if (end < 0) end = ta.value.length;
    return { start, end, text: ta.value.slice(start, end), before: ta.value.slice(start, pos) };
  }

  function newlineIndent() {
    const { before } = currentLine();
    const ws = /^ */.exec(before)[0].length;
    const dash = /^( *)((?:- +)+)/.exec(before);
    let ind = dash ? dash[0].length : ws;
    if (/:\s*([|>][-+0-9]*)?\s*$/.test(before)) ind = (dash ? dash[0].length : ws) + 2;
    return `\n${' '.repeat(ind)}`;
  }

  // ---- completion ----
  function openCompletion(forced) {
    const r = completionsAt(ta.value, ta.selectionStart);
    if (!r || !r.items.length || (!forced && !r.prefix && r.items.every((i) => i.kind !== 'value'))) { closeCompletion(); return; }
    const prevLabel = comp?.items[comp.index]?.label;
    comp = { ...r, index: Math.max(0, r.items.findIndex((i) => i.label === prevLabel)) };
    drawCompletion();
  }

  function drawCompletion() {
    list.replaceChildren(...comp.items.slice(0, 60).map((it, i) => h('li', {
      role: 'option', id: `${id}-opt-${i}`, 'aria-selected': String(i === comp.index), 'data-testid': 'completion-item',
      'data-label': it.label, 'data-kind': it.kind,
      onmousedown: (e) => { e.preventDefault(); comp.index = i; accept(); },
    }, h('span', { class: 'icon', 'aria-hidden': 'true' }, it.kind === 'snippet' ? '{}' : it.kind === 'value' ? '=' : 'f'),
    h('span', { class: 'label' }, it.label), h('span', { class: 'detail' }, it.detail || ''))));
    list.hidden = false;
    ta.setAttribute('aria-expanded', 'true');
    ta.setAttribute('aria-activedescendant', `${id}-opt-${comp.index}`);
    const { line, col } = lineCol(ta.value, comp.from);
    const left = gutter.offsetWidth + PAD_LEFT + col * cw - ta.scrollLeft;
    const top = PAD_TOP + (line + 1) * LINE_H - ta.scrollTop + 2;
    list.style.left = `${Math.max(0, left)}px`;
    list.style.top = `${top}px`;
    list.querySelector('[aria-selected="true"]')?.scrollIntoView({ block: 'nearest' });
    const it = comp.items[comp.index];
    docBox.hidden = !it?.doc;
    if (it?.doc) {
      docBox.replaceChildren(h('div', {}, h('b', { class: 'mono' }, it.label), it.type ? h('span', { class: 'muted mono' }, ` ${it.type}`) : null), h('div', {}, it.doc));
      docBox.style.left = `${Math.max(0, left) + list.offsetWidth + 6}px`;
      docBox.style.top = `${top}px`;
    }
  }

  function closeCompletion() {
    comp = null;
    list.hidden = true;
    docBox.hidden = true;
    ta.setAttribute('aria-expanded', 'false');
    ta.removeAttribute('aria-activedescendant');
  }

  function accept() {
    const it = comp?.items[comp.index];
    if (!it) return;
    const from = comp.from;
    closeCompletion();
    insert(it.insert.includes('§') ? it.insert : `${it.insert}§`, from, ta.selectionStart);
    // A new list or mapping goes on: offer what can go in it.
    if (/(- |\n *)§$/.test(it.insert)) setTimeout(() => openCompletion(true), 0);
  }

  // ---- hover ----
  function posFromPoint(x, y) {
    const r = ta.getBoundingClientRect();
    const line = Math.floor((y - r.top + ta.scrollTop - PAD_TOP) / LINE_H);
    const col = Math.floor((x - r.left + ta.scrollLeft - PAD_LEFT) / cw);
    return { line, col };
  }

  function hover(e) {
    const { line, col } = posFromPoint(e.clientX, e.clientY);
    if (line < 0 || line >= lines.length || col < 0) { tip.hidden = true; return; }
    const parts = [];
    const rs = (ranges.get(line) || []).filter((r) => (r.to > r.from ? col >= r.from && col < r.to : col >= r.from - 1));
    for (const r of rs) {
      parts.push(h('div', { class: 'tt-diag' }, h('span', { class: r.d.severity === 'warning' ? 'tt-warning' : 'tt-error' },
        r.d.severity === 'warning' ? 'Warning: ' : 'Error: '), r.d.message, r.d.hint ? h('div', { class: 'tt-hint' }, r.d.hint) : null));
    }
    const k = keyAt(ta.value, line, col);
    if (k) {
      const { field } = resolvePath(k.kind, k.path);
      if (field) {
        parts.unshift(h('div', { 'data-testid': 'hover-doc' }, h('div', { class: 'tt-title' }, k.key, h('span', { class: 'tt-type' }, typeLabel(field))),
          field.doc, field.values ? h('div', { class: 'tt-hint' }, `One of: ${field.values.join(', ')}`) : null));
      }
    }
    if (!parts.length) { tip.hidden = true; return; }
    tip.replaceChildren(...parts);
    tip.hidden = false;
    const er = el.getBoundingClientRect();
    const tr = ta.getBoundingClientRect();
    const x = Math.min(e.clientX - er.left + 8, el.clientWidth - tip.offsetWidth - 8);
    const lineBottom = tr.top - er.top + PAD_TOP + (line + 1) * LINE_H - ta.scrollTop + 4;
    tip.style.left = `${Math.max(4, x)}px`;
    tip.style.top = `${lineBottom}px`;
  }

  // ---- events ----
  ta.addEventListener('input', (e) => {
    render();
    onChange?.(ta.value);
    scheduleValidate();
    tip.hidden = true;
    const typed = e.inputType === 'insertText' && e.data && /[\w\-]/.test(e.data);
    const spaceAfterColon = e.inputType === 'insertText' && e.data === ' ' && /:\s$/.test(currentLine().before);
    if (comp || typed || spaceAfterColon) openCompletion(false);
  });
  ta.addEventListener('scroll', () => { syncScroll(); if (comp) closeCompletion(); tip.hidden = true; });
  ta.addEventListener('blur', () => setTimeout(() => { if (document.activeElement !== ta) closeCompletion(); }, 100));
  ta.addEventListener('click', () => { if (comp) closeCompletion(); });
  ta.addEventListener('mousemove', (e) => { if (!e.buttons) hover(e); });
  ta.addEventListener('mouseleave', () => { tip.hidden = true; });
  ta.addEventListener('keydown', (e) => {
    const mod = e.ctrlKey || e.metaKey;
    if (mod && (e.key === 's' || e.key === 'S')) { e.preventDefault(); onSave?.(); return; }
    if (mod && (e.key === ' ' || e.code === 'Space')) { e.preventDefault(); openCompletion(true); return; }
    if (comp) {
      const n = Math.min(comp.items.length, 60);
      if (e.key === 'ArrowDown') { e.preventDefault(); comp.index = (comp.index + 1) % n; drawCompletion(); return; }
      if (e.key === 'ArrowUp') { e.preventDefault(); comp.index = (comp.index - 1 + n) % n; drawCompletion(); return; }
      if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); accept(); return; }
      if (e.key === 'Escape') { e.preventDefault(); closeCompletion(); return; }
    }
    if (e.key === 'Escape') { escapeArmed = true; tip.hidden = true; return; }
    if (e.key === 'Tab' && !escapeArmed && !mod && !e.altKey) {
      e.preventDefault();
      if (e.shiftKey) {
        const { start, text } = currentLine();
        const n = Math.min(2, /^ */.exec(text)[0].length);
        if (n) { const pos = ta.selectionStart; insert('', start, start + n); ta.setSelectionRange(pos - n, pos - n); }
      } else insert('  ');
      return;
    }
    escapeArmed = false;
    if (e.key === 'Enter' && !mod && !e.shiftKey && !e.altKey) { e.preventDefault(); insert(newlineIndent()); }
  });

  requestAnimationFrame(() => { measure(); render(); });
  render();
  scheduleValidate();

  return {
    el,
    getValue: () => ta.value,
    setValue(text) { ta.value = text; render(); scheduleValidate(); },
    setDiagnostics,
    validateNow() { clearTimeout(vTimer); vTimer = setTimeout(() => {}, 0); scheduleValidate(); },
    focus: () => ta.focus(),
    /** Puts the caret at a 1-based line and column and scrolls it into view. */
    reveal(line, column = 1) {
      const ls = ta.value.split('\n');
      const l = Math.min(Math.max(line - 1, 0), ls.length - 1);
      const off = ls.slice(0, l).reduce((s, x) => s + x.length + 1, 0) + Math.min(column - 1, ls[l].length);
      ta.focus();
      ta.setSelectionRange(off, off);
      ta.scrollTop = Math.max(0, l * LINE_H - ta.clientHeight / 2);
      syncScroll();
    },
    destroy() { clearTimeout(vTimer); vSeq += 1; },
  };
}
