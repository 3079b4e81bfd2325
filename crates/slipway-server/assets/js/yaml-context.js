// Light YAML structure for the editor: per-line facts (indent, list dashes, key, block scalars,
// document breaks) and the YAML path at a position, by indentation. It does not parse YAML
// fully; it answers "which mapping is the cursor in" well enough for completion and hover.

const KEY = /^("[^"]*"|'[^']*'|[^\s#:"'[\]{},][^:#]*?)\s*:(?=\s|$)/;
const BLOCK = /^[|>][-+0-9]*\s*(#.*)?$/;

/** Facts about every line. */
export function analyze(text) {
  const raw = text.split('\n');
  const lines = [];
  let blockParent = -1;
  for (let i = 0; i < raw.length; i++) {
    const t = raw[i];
    const indent = t.length - t.trimStart().length;
    const trimmed = t.trim();
    if (blockParent >= 0 && (trimmed === '' || indent > blockParent)) {
      lines.push({ text: t, indent, block: true, skip: true, dashes: [], keyCol: indent });
      continue;
    }
    blockParent = -1;
    const docBreak = /^(---|\.\.\.)(\s|$)/.test(t);
    const info = { text: t, indent, block: false, docBreak, dashes: [], keyCol: indent, key: null, keyStart: -1, keyEnd: -1,
      value: '', valueStart: -1, skip: docBreak || trimmed === '' || trimmed.startsWith('#') };
    if (!info.skip) {
      let c = indent;
      while (t[c] === '-' && (t[c + 1] === ' ' || c + 1 === t.length)) {
        info.dashes.push(c);
        c += 1;
        while (t[c] === ' ') c += 1;
      }
      info.keyCol = c;
      const m = KEY.exec(t.slice(c));
      if (m) {
        info.key = m[1].replace(/^["']|["']$/g, '');
        info.keyStart = c;
        info.keyEnd = c + m[1].length;
        let v = c + m[0].length;
        while (t[v] === ' ') v += 1;
        info.valueStart = v;
        info.value = t.slice(v);
      } else {
        info.valueStart = c;
        info.value = t.slice(c);
      }
      if (BLOCK.test(info.value)) {
        info.opensBlock = true;
        blockParent = info.key ? info.keyCol : info.dashes.length ? info.dashes[info.dashes.length - 1] : indent;
      }
    }
    lines.push(info);
  }
  return lines;
}

/** The first and last line of the YAML document holding line L. */
export function docRange(lines, L) {
  let a = L;
  while (a > 0 && !lines[a].docBreak) a -= 1;
  if (lines[a]?.docBreak && a !== L) a += 1;
  else if (lines[a]?.docBreak) a += 1;
  let b = L;
  while (b < lines.length - 1 && !lines[b + 1].docBreak) b += 1;
  return [Math.min(a, L), b];
}

/** The document's kind (from its top-level `kind:`), or ''. */
export function docKind(lines, L) {
  const [a, b] = docRange(lines, L);
  for (let i = a; i <= b; i++) {
    const ln = lines[i];
    if (!ln.skip && ln.indent === 0 && !ln.dashes.length && ln.key === 'kind') return ln.value.replace(/\s*#.*$/, '').replace(/^["']|["']$/g, '').trim();
  }
  return '';
}

const lastDash = (ln) => ln.dashes[ln.dashes.length - 1];

/**
 * The path of the collection that holds an entry starting at line L: a mapping whose keys are at
 * column `col` (want 'map') or a sequence whose dashes are at column `col` (want 'seq').
 */
export function containerPath(lines, L, col, want = 'map', start = 0) {
  const path = [];
  let T = col;
  for (let i = L - 1; i >= start; i--) {
    if (want === 'map' && T === 0) break;
    const ln = lines[i];
    if (ln.skip || ln.docBreak) { if (ln.docBreak) break; continue; }
    if (want === 'map') {
      if (ln.dashes.length && ln.indent < T && ln.keyCol >= T) {
        path.unshift('[]');
        want = 'seq';
        T = ln.dashes.find((d) => d < T && d >= 0) === undefined ? ln.indent : Math.max(...ln.dashes.filter((d) => d < T));
        continue;
      }
      if (ln.keyCol < T && ln.key) {
        path.unshift(ln.key);
        if (ln.dashes.length) { path.unshift('[]'); want = 'seq'; T = lastDash(ln); } else T = ln.keyCol;
      } else if (ln.keyCol < T && ln.dashes.length) {
        T = ln.keyCol;
      }
    } else {
      if (ln.dashes.length && ln.indent === T) continue;
      if (ln.keyCol <= T && ln.key && !(ln.dashes.length && ln.indent >= T)) {
        path.unshift(ln.key);
        if (ln.dashes.length) { path.unshift('[]'); want = 'seq'; T = lastDash(ln); } else { want = 'map'; T = ln.keyCol; }
      }
    }
  }
  return path;
}

/** Position → line index and column. */
export function lineCol(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split('\n').length - 1;
  return { line, col: offset - (before.lastIndexOf('\n') + 1) };
}

/**
 * What the cursor is on, for completion:
 *   {mode: 'key', path, prefix, from, col, lineHasDash, siblings}  — typing a key in a mapping
 *   {mode: 'value', path, key, prefix, from}                        — typing a key's value
 *   {mode: 'none'}
 * `from` is the offset where the typed prefix starts (what a completion replaces).
 */
export function completionContext(text, offset) {
  const lines = analyze(text);
  const { line: L, col } = lineCol(text, offset);
  const ln = lines[L];
  if (!ln || ln.block) return { mode: 'none', lines, line: L };
  const before = ln.text.slice(0, col);
  const [start] = docRange(lines, L);
  const kind = docKind(lines, L);
  let m = /^( *)((?:- +)*)([\w.\-/"']*)$/.exec(before);
  if (m) {
    const indent = m[1].length;
    const dashText = m[2];
    const keyCol = indent + dashText.length;
    const prefix = m[3].replace(/^["']/, '');
    let path;
    if (dashText) {
      const dashCols = [];
      for (let c = indent, k = 0; k < dashText.length; k++, c++) if (dashText[k] === '-') dashCols.push(c);
      path = [...containerPath(lines, L, dashCols[dashCols.length - 1], 'seq', start), '[]'];
    } else path = containerPath(lines, L, keyCol, 'map', start);
    return { mode: 'key', kind, path, prefix, from: offset - m[3].length, col: keyCol, lineHasDash: !!dashText,
      siblings: dashText ? siblingKeys(lines, L, keyCol, true) : siblingKeys(lines, L, keyCol, false), lines, line: L,
      empty: ln.text.trim() === '' || before.trim() === ln.text.trim() };
  }
  m = /^( *)((?:- +)*)("[^"]*"|'[^']*'|[\w.\-/]+)\s*:\s+([\w.\-/"']*)$/.exec(before);
  if (m) {
    const indent = m[1].length;
    const keyCol = indent + m[2].length;
    const base = m[2] ? [...containerPath(lines, L, lastDash(ln), 'seq', start), '[]'] : containerPath(lines, L, keyCol, 'map', start);
    return { mode: 'value', kind, path: [...base, m[3].replace(/^["']|["']$/g, '')], key: m[3], prefix: m[4].replace(/^["']/, ''),
      from: offset - m[4].length, lines, line: L };
  }
  return { mode: 'none', lines, line: L };
}

/** Keys already present in the mapping that holds line L (keys at column col). */
function siblingKeys(lines, L, col, itemStart) {
  const keys = new Set();
  const scan = (i, step) => {
    for (; i >= 0 && i < lines.length; i += step) {
      const ln = lines[i];
      if (ln.docBreak) return;
      if (ln.skip) continue;
      if (ln.keyCol < col) return;
      if (ln.dashes.length && ln.indent < col) {
        if (step < 0 && ln.keyCol === col && ln.key) keys.add(ln.key);
        return;
      }
      if (ln.keyCol === col && ln.key) keys.add(ln.key);
    }
  };
  if (!itemStart) scan(L - 1, -1);
  scan(L + 1, 1);
  return keys;
}

/** The key under a position, for hover: {path, kind, key, from, to} or null. */
export function keyAt(text, line, col) {
  const lines = analyze(text);
  const ln = lines[line];
  if (!ln || ln.skip || !ln.key || col < ln.keyStart || col > ln.keyEnd) return null;
  const [start] = docRange(lines, line);
  const base = ln.dashes.length ? [...containerPath(lines, line, lastDash(ln), 'seq', start), '[]'] : containerPath(lines, line, ln.keyCol, 'map', start);
  return { path: [...base, ln.key], kind: docKind(lines, line), key: ln.key, from: ln.keyStart, to: ln.keyEnd };
}
