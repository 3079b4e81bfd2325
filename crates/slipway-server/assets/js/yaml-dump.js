// JSON → YAML text, for showing objects (a run, or a resource when the server answers JSON).

const PLAIN = /^[A-Za-z_/$(][\w./$()\-[\]*]*$/;
const RESERVED = /^(true|false|null|yes|no|on|off|~|-?\d+(\.\d+)?([eE][-+]?\d+)?)$/i;

function scalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  if (s === '') return "''";
  if (PLAIN.test(s) && !RESERVED.test(s) && !s.includes(': ') && !s.includes(' #')) return s;
  return JSON.stringify(s);
}

function block(s, indent) {
  const pad = ' '.repeat(indent);
  const body = s.replace(/\n$/, '').split('\n').map((l) => (l ? pad + l : '')).join('\n');
  return `|${s.endsWith('\n') ? '' : '-'}\n${body}`;
}

function isEmpty(v) { return v && typeof v === 'object' && Object.keys(v).length === 0; }

export function toYaml(value, indent = 0) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    if (!value.length) return '[]';
    return value.map((item) => {
      if (item && typeof item === 'object' && !isEmpty(item)) {
        const inner = toYaml(item, indent + 2);
        return `${pad}- ${inner.slice(indent + 2)}`;
      }
      return `${pad}- ${leaf(item, indent + 2)}`;
    }).join('\n');
  }
  if (value && typeof value === 'object') {
    if (isEmpty(value)) return '{}';
    return Object.entries(value).map(([k, v]) => {
      const key = scalar(k);
      if (v && typeof v === 'object' && !isEmpty(v)) {
        return `${pad}${key}:\n${toYaml(v, indent + 2)}`;
      }
      return `${pad}${key}: ${leaf(v, indent + 2)}`;
    }).join('\n');
  }
  return pad + leaf(value, indent);
}

function leaf(v, indent) {
  if (isEmpty(v)) return Array.isArray(v) ? '[]' : '{}';
  if (typeof v === 'string' && v.includes('\n')) return block(v, indent);
  return scalar(v);
}
