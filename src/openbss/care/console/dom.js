// DOM helpers: every text goes through text nodes (data is never parsed as HTML); no inline styles (strict CSP).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  const later = [];
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' || key === 'checked' || key === 'selected') later.push([key, value]);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  for (const [key, value] of later) el[key] = value;
  return el;
}

export function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
  return el;
}

let uid = 0;
export function nextId(prefix) { uid += 1; return `${prefix}-${uid}`; }

/** A labelled control: <div class="field"><label for>…</label>control<p class="hint"></p></div> */
export function field(label, control, hint) {
  if (!control.id) control.id = nextId('f');
  const parts = [h('label', { for: control.id }, label), control];
  if (hint) {
    const hintEl = h('p', { class: 'hint', id: `${control.id}-hint` }, hint);
    control.setAttribute('aria-describedby', hintEl.id);
    parts.push(hintEl);
  }
  return h('div', { class: 'field' }, parts);
}

export function select(name, options, attrs = {}) {
  return h('select', { name, ...attrs }, options.map(([value, label]) => h('option', { value }, label)));
}

export function badge(text, tone) {
  return h('span', { class: `badge ${tone || toneOf(text)}` }, humanize(text));
}

export function toneOf(state) {
  const s = String(state || '').toLowerCase();
  if (['active', 'completed', 'closed', 'resolved', 'approved', 'settled', 'applied'].includes(s)) return 'good';
  if (['pending', 'held', 'inprogress', 'acknowledged', 'suspended', 'pendingapproval', 'new'].includes(s)) return 'warn';
  if (['terminated', 'cancelled', 'rejected', 'failed', 'unavailable'].includes(s)) return 'bad';
  return 'neutral';
}

export function humanize(value) {
  const s = String(value ?? '').replace(/[_-]+/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').trim();
  return s ? s.charAt(0).toUpperCase() + s.slice(1).toLowerCase() : '';
}

export function money(m) {
  if (!m || m.value === undefined || m.value === null) return '—';
  const n = Number(m.value);
  try {
    return new Intl.NumberFormat('en-GB', { style: 'currency', currency: m.unit || 'EUR' }).format(n);
  } catch {
    return `${m.value} ${m.unit || ''}`.trim();
  }
}

export function when(value) {
  if (!value) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}

/** A table with a caption; rows are arrays of cells (Nodes or text). */
export function table(caption, headers, rows, testid) {
  return h('div', { class: 'table-wrap' }, h('table', { dataset: testid ? { testid } : undefined },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', null, h('tr', null, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', null, rows.map((r) => h('tr', null, r.map((c) => h('td', null, c)))))));
}

export function alertBox(message) {
  return h('div', { class: 'alert', role: 'alert', tabindex: '-1', dataset: { testid: 'alert' } }, message);
}
