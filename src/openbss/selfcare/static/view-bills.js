// My bills: the amount due per account, the issued bills and credit notes, each bill's PDF.
import { api, ApiError } from './api.js';
import { h, badge, stateTone, humanize, formatMoney, formatDate, timeEl } from './dom.js';

const COLUMNS = ['Bill', 'Date', 'Period', 'Total', 'Status', 'PDF'];

function safeHref(pdf, id) {
  // Only a same-site path is used as a link; anything else falls back to the documented URL.
  if (typeof pdf === 'string' && /^\/selfcare\/[^\s]*$/.test(pdf) && !pdf.startsWith('//')) return pdf;
  return api.billPdfUrl(id);
}

function money(m) {
  return m ? formatMoney(m.value, m.unit) : '';
}

function period(bill) {
  // local calendar dates of the account (the first and the last day of the period)
  if (!bill.periodStart || !bill.periodEnd) return '';
  return `${formatDate(bill.periodStart)} – ${formatDate(bill.periodEnd)}`;
}

function dueCard(due) {
  const amount = Number(due.amountDue && due.amountDue.value);
  const owing = Number.isFinite(amount) && amount > 0;
  return h('article', { class: 'card due-card', dataset: { testid: 'bills-due' } },
    h('p', { class: 'money-label' }, `Amount due${due.account ? ` · ${due.account}` : ''}`),
    h('p', { class: 'money-amount', dataset: { testid: 'bills-due-amount' } }, money(due.amountDue)),
    h('p', { class: 'muted' }, owing && due.dueDate
      ? ['Due by ', timeEl(due.dueDate, formatDate(due.dueDate)), due.billNo ? ` (bill ${due.billNo})` : '']
      : 'Nothing to pay.'));
}

function billRow(bill) {
  const note = bill.category === 'creditNote';
  const name = String(bill.billNo ?? '');
  return h('tr', { dataset: { testid: 'bill-row' } },
    h('td', { 'data-label': COLUMNS[0], class: 'nowrap' }, name, note ? [' ', badge('credit note', 'info')] : null),
    h('td', { 'data-label': COLUMNS[1] }, bill.billDate ? timeEl(bill.billDate, formatDate(bill.billDate)) : ''),
    h('td', { 'data-label': COLUMNS[2] }, note ? '' : period(bill)),
    h('td', { 'data-label': COLUMNS[3], class: 'num' }, money(bill.total)),
    h('td', { 'data-label': COLUMNS[4] }, badge(humanize(bill.state) || 'Issued', stateTone(bill.state))),
    h('td', { 'data-label': COLUMNS[5] }, h('a', {
      href: safeHref(bill.pdf, bill.id), download: `bill-${name || bill.id}.pdf`, dataset: { testid: 'bill-pdf' },
      'aria-label': `Download bill ${name} (PDF)`,
    }, h('span', { class: 'icon-download', 'aria-hidden': 'true' }), 'PDF')));
}

export async function billsView(ctx) {
  let data;
  try {
    data = await api.bills();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      ctx.unauthorized();
      return h('div');
    }
    throw err;
  }
  const bills = Array.isArray(data && data.bills) ? data.bills : [];
  const due = Array.isArray(data && data.due) ? data.due : [];
  const table = h('table', { class: 'data-table usage-table bills-table' },
    h('caption', null, `${bills.length} document${bills.length === 1 ? '' : 's'}`),
    h('thead', null, h('tr', null, COLUMNS.map((c, i) => h('th', { scope: 'col', class: i === 3 ? 'num' : null }, c)))),
    h('tbody', null, bills.map(billRow)));
  return h('div', { class: 'view view-bills' },
    h('div', { class: 'view-head' }, h('div', null, h('h1', { tabindex: '-1' }, 'My bills'))),
    due.length ? h('div', { class: 'lines' }, due.map(dueCard)) : null,
    bills.length
      ? h('div', { class: 'card' }, h('div', { class: 'table-wrap' }, table))
      : h('div', { class: 'card empty', dataset: { testid: 'bills-empty' } }, h('p', null, 'You have no bills yet.')));
}
