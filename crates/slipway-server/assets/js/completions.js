// Completion items at a cursor: Tekton fields valid at the YAML path (minus those already
// present), allowed values after `key: `, and snippets (documents at the top level, list items
// such as a step, a param or a workspace where such a list is).
import { completionContext } from './yaml-context.js';
import { TYPES, SNIPPETS, resolvePath } from './tekton-schema.js';

export function typeLabel(f) {
  if (!f) return '';
  const base = f.type === 'map' ? 'map' : f.type;
  return f.list ? `${base}[]` : base;
}

function fieldInsert(name, f, col) {
  const pad = ' '.repeat(col + 2);
  if (f.list && TYPES[f.type]) return `${name}:\n${pad}- §`;
  if (f.list) return `${name}:\n${pad}- §`;
  if (TYPES[f.type] || f.type === 'map') return `${name}:\n${pad}§`;
  if (f.type === 'boolean') return `${name}: §`;
  return `${name}: §`;
}

/** Re-indents a snippet for insertion at `col`; with the dash already typed, drops the snippet's. */
function snippetInsert(text, col, dashTyped) {
  let t = text.replace(/\n$/, '');
  let base = col;
  if (dashTyped && t.startsWith('- ')) { t = t.slice(2); base = col - 2; }
  return t.split('\n').map((l, i) => (i === 0 || !l ? l : ' '.repeat(base) + l)).join('\n');
}

function rank(items, prefix) {
  const p = prefix.toLowerCase();
  if (!p) return items;
  const starts = items.filter((i) => i.label.toLowerCase().startsWith(p));
  const has = items.filter((i) => !i.label.toLowerCase().startsWith(p) && i.label.toLowerCase().includes(p));
  return [...starts, ...has];
}

/** {from, items: [{label, detail, doc, insert, kind}]} or null when nothing applies. */
export function completionsAt(text, offset) {
  const ctx = completionContext(text, offset);
  if (ctx.mode === 'value') {
    const { field } = resolvePath(ctx.kind, ctx.path);
    const values = field?.values || (field?.type === 'boolean' ? ['true', 'false'] : null);
    if (!values) return null;
    const items = values.map((v) => ({ label: v, detail: 'value', doc: field.doc, insert: v, kind: 'value' }));
    return { from: ctx.from, prefix: ctx.prefix, items: rank(items, ctx.prefix) };
  }
  if (ctx.mode !== 'key') return null;
  const r = resolvePath(ctx.kind, ctx.path);
  const items = [];
  if (r.type && TYPES[r.type]) {
    for (const [name, f] of Object.entries(TYPES[r.type].fields)) {
      if (ctx.siblings.has(name)) continue;
      items.push({ label: name, detail: typeLabel(f) + (f.required ? ' · required' : ''), doc: f.doc, insert: fieldInsert(name, f, ctx.col), kind: 'field', type: typeLabel(f) });
    }
  }
  const elem = r.elementType || (ctx.path.at(-1) === '[]' ? resolvePath(ctx.kind, ctx.path.slice(0, -1)).elementType : null);
  if (elem && SNIPPETS[elem] && (r.inList || ctx.lineHasDash)) {
    for (const sn of SNIPPETS[elem]) items.push({ label: sn.label, detail: sn.detail, doc: `Snippet: ${sn.detail}.`, insert: snippetInsert(sn.text, ctx.col, ctx.lineHasDash), kind: 'snippet' });
  }
  if (!ctx.path.length && ctx.col === 0) {
    const [a, b] = [0, ctx.lines.length - 1];
    const docEmpty = !ctx.kind && ctx.lines.slice(a, b + 1).every((l) => l.skip || l === ctx.lines[ctx.line]);
    for (const sn of [...SNIPPETS.root].reverse()) {
      if (!docEmpty && ctx.kind) break;
      items.unshift({ label: sn.label, detail: sn.detail, doc: `Snippet: a complete ${sn.label}.`, insert: snippetInsert(sn.text, 0, false), kind: 'snippet' });
    }
  }
  if (!items.length) return null;
  return { from: ctx.from, prefix: ctx.prefix, items: rank(items, ctx.prefix) };
}
