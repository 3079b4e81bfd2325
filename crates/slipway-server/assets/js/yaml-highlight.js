// Syntax colouring of YAML lines as token ranges [{from, to, cls}], with Tekton's $(...)
// substitutions picked out everywhere, including inside scripts.

const VAR = /\$\((?:[^()]|\([^()]*\))*\)/g;
const NUM = /^[-+]?(\d[\d_]*(\.\d*)?([eE][-+]?\d+)?|\.inf|\.nan|0x[0-9a-fA-F]+)$/;
const BOOL = /^(true|false|null|~|yes|no|on|off|True|False|Null)$/;

function vars(text, from, to, out) {
  VAR.lastIndex = 0;
  const slice = text.slice(from, to);
  for (let m; (m = VAR.exec(slice));) out.push({ from: from + m.index, to: from + m.index + m[0].length, cls: 'tok-var' });
}

/** Tokens of one analysed line (see yaml-context.analyze). */
export function tokens(ln) {
  const t = ln.text;
  const out = [];
  if (ln.block) { vars(t, 0, t.length, out); return out; }
  if (ln.docBreak) { out.push({ from: 0, to: t.length, cls: 'tok-doc' }); return out; }
  const trimmed = t.trimStart();
  if (trimmed.startsWith('#')) { out.push({ from: ln.indent, to: t.length, cls: 'tok-com' }); return out; }
  if (!trimmed) return out;
  for (const d of ln.dashes) out.push({ from: d, to: d + 1, cls: 'tok-punct' });
  if (ln.key) {
    out.push({ from: ln.keyStart, to: ln.keyEnd, cls: 'tok-key' });
    out.push({ from: ln.keyEnd, to: ln.keyEnd + 1, cls: 'tok-punct' });
  }
  value(t, ln.valueStart < 0 ? ln.keyCol : ln.valueStart, out);
  return out.sort((a, b) => a.from - b.from);
}

function value(t, i, out) {
  while (i < t.length) {
    const c = t[i];
    if (c === ' ') { i += 1; continue; }
    if (c === '#' && (i === 0 || t[i - 1] === ' ')) { out.push({ from: i, to: t.length, cls: 'tok-com' }); return; }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < t.length && t[j] !== c) j += c === '"' && t[j] === '\\' ? 2 : 1;
      j = Math.min(j + 1, t.length);
      const inner = [];
      vars(t, i, j, inner);
      let k = i;
      for (const v of inner) { if (v.from > k) out.push({ from: k, to: v.from, cls: 'tok-str' }); out.push(v); k = v.to; }
      if (k < j) out.push({ from: k, to: j, cls: 'tok-str' });
      i = j;
      continue;
    }
    if ('[]{},'.includes(c)) { out.push({ from: i, to: i + 1, cls: 'tok-punct' }); i += 1; continue; }
    if ((c === '|' || c === '>') && /^[|>][-+0-9]*\s*(#.*)?$/.test(t.slice(i))) {
      const end = i + /^[|>][-+0-9]*/.exec(t.slice(i))[0].length;
      out.push({ from: i, to: end, cls: 'tok-block' });
      i = end;
      continue;
    }
    // A plain scalar runs to a comment, or to a flow indicator inside [ ] / { }.
    let j = i;
    while (j < t.length && !(t[j] === '#' && t[j - 1] === ' ') && !',[]{}'.includes(t[j])) j += 1;
    while (j > i && t[j - 1] === ' ') j -= 1;
    const word = t.slice(i, j);
    if (NUM.test(word)) out.push({ from: i, to: j, cls: 'tok-num' });
    else if (BOOL.test(word)) out.push({ from: i, to: j, cls: 'tok-bool' });
    else {
      const inner = [];
      vars(t, i, j, inner);
      let k = i;
      for (const v of inner) { if (v.from > k) out.push({ from: k, to: v.from, cls: 'tok-str' }); out.push(v); k = v.to; }
      if (k < j) out.push({ from: k, to: j, cls: 'tok-str' });
    }
    i = Math.max(j, i + 1);
  }
}
