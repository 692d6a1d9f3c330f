// Usage: month selector, the month's itemized events, totals per service and the PDF.
import { api, ApiError } from './api.js';
import { h, field, showAlert, clearAlert, badge, formatMoney, formatMonth, formatDateTime, timeEl } from './dom.js';

const COLUMNS = ['Date and time', 'Line', 'Service', 'Destination', 'Quantity', 'Charge'];

function safePdfHref(pdf, month) {
  // Only a same-site path is used as a link; anything else falls back to the documented URL.
  if (typeof pdf === 'string' && /^\/selfcare\/[^\s]*$/.test(pdf) && !pdf.startsWith('//')) return pdf;
  return api.pdfUrl(month);
}

function chargeCell(item) {
  if (item.included) return badge('included', 'info');
  return formatMoney(item.charge, item.currency);
}

function monthContent(usage, month) {
  const items = Array.isArray(usage && usage.items) ? usage.items : [];
  const totals = Array.isArray(usage && usage.totals) ? usage.totals : [];
  const timeZone = usage && usage.timeZone;
  const headingId = `usage-${month}`;

  const pdf = h('a', {
    class: 'button secondary', href: safePdfHref(usage && usage.pdf, month), download: `usage-${month}.pdf`,
    dataset: { testid: 'usage-pdf' }, 'aria-describedby': headingId,
  }, h('span', { class: 'icon-download', 'aria-hidden': 'true' }), 'Download PDF');

  const head = h('div', { class: 'usage-head' },
    h('div', null,
      h('h2', { id: headingId }, formatMonth(month)),
      h('p', { class: 'muted' }, usage && usage.closed
        ? 'Closed month: this statement is final.'
        : 'Month in progress: new usage may still appear.')),
    pdf);

  if (!items.length) {
    return [head, h('p', { class: 'empty', dataset: { testid: 'usage-empty' } }, 'No usage in this month.')];
  }

  const table = h('table', { class: 'data-table usage-table' },
    h('caption', null, `${items.length} event${items.length === 1 ? '' : 's'}`,
      timeZone ? `, times in ${String(timeZone).replace(/_/g, ' ')}` : ''),
    h('thead', null, h('tr', null, COLUMNS.map((c, i) => h('th', { scope: 'col', class: i === 5 ? 'num' : null }, c)))),
    h('tbody', null, items.map((item) => h('tr', { dataset: { testid: 'usage-row' } },
      h('td', { 'data-label': COLUMNS[0] }, item.at ? timeEl(item.at, formatDateTime(item.at, timeZone)) : ''),
      h('td', { 'data-label': COLUMNS[1], class: 'nowrap' }, String(item.msisdn ?? '')),
      h('td', { 'data-label': COLUMNS[2] }, String(item.service ?? '')),
      h('td', { 'data-label': COLUMNS[3], class: 'break' }, String(item.destination ?? '')),
      h('td', { 'data-label': COLUMNS[4] }, String(item.quantity ?? '')),
      h('td', { 'data-label': COLUMNS[5], class: 'num' }, chargeCell(item))))));

  const totalsBlock = totals.length ? h('section', { class: 'totals', 'aria-labelledby': `${headingId}-totals`,
    dataset: { testid: 'usage-totals' } },
  h('h3', { id: `${headingId}-totals` }, 'Totals by service'),
  h('ul', { class: 'tiles' }, totals.map((t) => {
    const count = Number(t.count);
    return h('li', { class: 'tile' },
      h('span', { class: 'tile-label' }, String(t.service ?? '')),
      h('span', { class: 'tile-value' }, formatMoney(t.charge, t.currency)),
      h('span', { class: 'tile-sub' }, Number.isFinite(count) ? `${count} event${count === 1 ? '' : 's'}` : ''));
  }))) : null;

  return [head, totalsBlock, h('div', { class: 'table-wrap' }, table)];
}

export async function usageView(ctx) {
  const answer = await api.usageMonths();
  let months = Array.isArray(answer && answer.months) ? answer.months.filter((m) => typeof m === 'string') : [];
  const current = answer && typeof answer.current === 'string' ? answer.current : null;
  if (current && !months.includes(current)) months = [current, ...months];

  const root = h('div', { class: 'view view-usage' });
  const heading = h('div', { class: 'view-head' }, h('h1', { tabindex: '-1' }, 'Usage'));
  if (!months.length) {
    root.append(heading, h('div', { class: 'card' }, h('p', { class: 'empty' }, 'No usage yet.')));
    return root;
  }

  const requested = ctx.params.get('month');
  let selected = months.includes(requested) ? requested : (current || months[0]);

  const select = h('select', { name: 'month', dataset: { testid: 'usage-month' } },
    months.map((m) => h('option', { value: m }, m === current ? `${formatMonth(m)} (current)` : formatMonth(m))));
  select.value = selected;
  const picker = h('div', { class: 'month-picker' }, field('Month', select));
  heading.appendChild(picker);

  const body = h('section', { class: 'card usage-card', 'aria-busy': 'false' });
  root.append(heading, body);

  let loadToken = 0;
  async function load(month) {
    const token = ++loadToken;
    body.setAttribute('aria-busy', 'true');
    body.classList.add('is-loading');
    try {
      const usage = await api.usage(month);
      if (token !== loadToken || !ctx.isCurrent()) return;
      clearAlert();
      body.replaceChildren(...monthContent(usage, month).filter(Boolean));
    } catch (err) {
      if (token !== loadToken || !ctx.isCurrent()) return;
      if (err instanceof ApiError && err.status === 401) {
        ctx.unauthorized();
        return;
      }
      body.replaceChildren();
      showAlert(body, err.message);
      body.appendChild(h('p', null, h('button', { type: 'button', class: 'button secondary', onclick: () => load(month) },
        'Try again')));
    } finally {
      if (token === loadToken) {
        body.setAttribute('aria-busy', 'false');
        body.classList.remove('is-loading');
      }
    }
  }

  select.addEventListener('change', () => {
    selected = select.value;
    // keep the month in the address (bookmarkable) without a hashchange, so focus stays on the selector
    history.replaceState(null, '', `#/usage?month=${encodeURIComponent(selected)}`);
    ctx.setStatus('');
    load(selected);
  });

  await load(selected);
  return root;
}
