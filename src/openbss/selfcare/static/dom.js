// DOM building and formatting helpers. All text goes through textContent / text nodes:
// customer data is never parsed as HTML. No inline styles (strict CSP).

const LOCALE = 'en-GB';

/**
 * h('div', {class: 'card', dataset: {testid: 'x'}, onclick: fn}, 'text', child, [more])
 * Attribute values of true render as empty boolean attributes, false/null/undefined are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  const deferred = [];
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key === 'text') el.textContent = value;
      else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else if (key === 'value' || key === 'checked' || key === 'selected') deferred.push([key, value]);
      else if (key === 'style') throw new Error('inline styles are not allowed');
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  // properties last: a <select>'s value needs its options
  for (const [key, value] of deferred) el[key] = value;
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
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form field: <div class="field"><label for>…</label><input id …><p class="hint">…</p></div> */
export function field(label, control, { hint, optional } = {}) {
  if (!control.id) control.id = nextId('f');
  const labelEl = h('label', { for: control.id }, label, optional ? h('span', { class: 'optional' }, ' (optional)') : null);
  let hintEl = null;
  if (hint) {
    hintEl = h('p', { class: 'hint', id: `${control.id}-hint` }, hint);
    control.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', { class: 'field' }, labelEl, control, hintEl);
}

export function checkboxField(label, control) {
  if (!control.id) control.id = nextId('f');
  return h('div', { class: 'check' }, control, h('label', { for: control.id }, label));
}

/** The single error element: removes any other one so data-testid="alert" stays unique. */
export function showAlert(container, message, { before = null, focus = false } = {}) {
  clearAlert();
  // the "!" icon is drawn by CSS so that the element's text is exactly the message
  const el = h('div', { class: 'alert', role: 'alert', dataset: { testid: 'alert' }, tabindex: '-1' }, message);
  if (before && before.parentNode === container) container.insertBefore(el, before);
  else container.appendChild(el);
  if (focus) el.focus();
  return el;
}

export function clearAlert() {
  for (const el of document.querySelectorAll('[data-testid="alert"]')) el.remove();
}

export function badge(text, tone = 'neutral') {
  return h('span', { class: `badge badge-${tone}` }, text);
}

export function stateTone(state) {
  const s = String(state || '').toLowerCase();
  if (['active', 'enabled', 'completed'].includes(s)) return 'good';
  if (['suspended', 'pending', 'inactive', 'barred', 'pendingactive', 'pendingterminate'].includes(s)) return 'warn';
  if (['terminated', 'cancelled', 'closed', 'disabled', 'blocked'].includes(s)) return 'bad';
  return 'neutral';
}

export function humanize(value) {
  const s = String(value ?? '').replace(/[_-]+/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').trim();
  return s ? s.charAt(0).toUpperCase() + s.slice(1).toLowerCase() : '';
}

// ---- formatting -------------------------------------------------------------------------------

export function formatMoney(amount, currency) {
  const value = Number(amount);
  if (!Number.isFinite(value)) return String(amount ?? '');
  try {
    return new Intl.NumberFormat(LOCALE, { style: 'currency', currency: currency || 'EUR' }).format(value);
  } catch {
    return `${value.toFixed(2)} ${currency || ''}`.trim();
  }
}

export function formatPercent(pct) {
  const digits = pct > 0 && pct < 10 ? 1 : 0;
  return `${new Intl.NumberFormat(LOCALE, { maximumFractionDigits: digits }).format(pct)}%`;
}

function toDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "1 Dec 2026". A timestamp at exactly midnight UTC is a calendar date: shown in UTC so it does not shift. */
export function formatDate(iso) {
  const d = toDate(iso);
  if (!d) return String(iso ?? '');
  const midnightUtc = d.getUTCHours() === 0 && d.getUTCMinutes() === 0 && d.getUTCSeconds() === 0;
  return new Intl.DateTimeFormat(LOCALE, {
    day: 'numeric', month: 'short', year: 'numeric', ...(midnightUtc ? { timeZone: 'UTC' } : {}),
  }).format(d);
}

export function formatDateTime(iso, timeZone) {
  const d = toDate(iso);
  if (!d) return String(iso ?? '');
  const opts = { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' };
  if (timeZone) {
    try {
      return new Intl.DateTimeFormat(LOCALE, { ...opts, timeZone }).format(d);
    } catch {
      // unknown time zone: fall back to the browser's
    }
  }
  return new Intl.DateTimeFormat(LOCALE, opts).format(d);
}

/** "2026-11" -> "November 2026" */
export function formatMonth(month) {
  const m = /^(\d{4})-(\d{2})$/.exec(String(month));
  if (!m) return String(month);
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1));
  return new Intl.DateTimeFormat(LOCALE, { month: 'long', year: 'numeric', timeZone: 'UTC' }).format(d);
}

export function countryName(code) {
  if (!code) return '';
  try {
    const names = new Intl.DisplayNames([LOCALE], { type: 'region' });
    return names.of(String(code).toUpperCase()) || code;
  } catch {
    return code;
  }
}

export function timeEl(iso, text) {
  return h('time', { datetime: iso }, text);
}

// ---- form helpers ------------------------------------------------------------------------------

export function busy(button) {
  return button.getAttribute('aria-disabled') === 'true';
}

/** Buttons are marked aria-disabled rather than disabled so that keyboard focus stays on them. */
export function setBusy(button, on, label) {
  if (on) {
    button.setAttribute('aria-disabled', 'true');
    if (label) {
      button.dataset.label = button.textContent;
      button.textContent = label;
    }
  } else {
    button.removeAttribute('aria-disabled');
    if (button.dataset.label) button.textContent = button.dataset.label;
    delete button.dataset.label;
  }
}

export function invalid(form, input, message) {
  showAlert(form, message, { before: form.firstChild });
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.addEventListener('input', () => input.removeAttribute('aria-invalid'), { once: true });
    input.focus();
  }
}
