// My bills: the amount due per account, the issued bills and credit notes, each bill's PDF.
import { api, ApiError } from './api.js';
import {
  h, badge, stateTone, humanize, formatMoney, formatDate, timeEl, field, showAlert, clearAlert, busy, setBusy, invalid,
} from './dom.js';

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

function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** The overdue notice of an account: how late, the pay button, and the promise-to-pay form (or the promise made). */
function overdueNotice(due, ctx) {
  const days = Number(due.daysPastDue) || 0;
  const card = h('div', { class: 'overdue', dataset: { testid: 'overdue-notice' } },
    h('p', { class: 'overdue-title' }, h('strong', null, 'Payment overdue'),
      ` · ${days} day${days === 1 ? '' : 's'} late`),
    h('p', null, 'Please pay ', h('strong', { dataset: { testid: 'overdue-amount' } }, money(due.amountDue)),
      ' to avoid restrictions on your lines.'));

  const pay = h('button', { type: 'button', class: 'button', dataset: { testid: 'overdue-pay' } },
    `Pay ${money(due.amountDue)} now`);
  pay.addEventListener('click', async () => {
    if (busy(pay)) return;
    clearAlert();
    setBusy(pay, true, 'Paying…');
    try {
      const out = await api.payDue(due.accountId);
      const p = out && out.payment ? out.payment : {};
      if (p.status === 'failed') {
        setBusy(pay, false);
        showAlert(card, `Your card was declined${p.reason ? ` (${p.reason})` : ''}. Please try another card.`);
        return;
      }
      ctx.go('#/bills', { flash: p.status === 'succeeded'
        ? `Thank you: your payment of ${money(p.amount)} was received.`
        : `Thank you: your payment of ${money(p.amount)} is being processed.` });
    } catch (err) {
      setBusy(pay, false);
      if (err instanceof ApiError && err.status === 401) { ctx.unauthorized(); return; }
      showAlert(card, err.message || 'The payment did not go through.');
    }
  });
  card.appendChild(h('div', { class: 'actions' }, pay));

  if (due.promise) {
    card.appendChild(h('p', { class: 'muted', dataset: { testid: 'promise-pending' } },
      `You promised to pay ${money(due.promise.amount)} by `,
      timeEl(due.promise.promisedDate, formatDate(due.promise.promisedDate)), '.'));
    return card;
  }
  const amount = h('input', { type: 'text', inputmode: 'decimal', name: 'amount', autocomplete: 'off',
    value: due.amountDue ? String(due.amountDue.value) : '', dataset: { testid: 'promise-amount' } });
  const date = h('input', { type: 'date', name: 'promisedDate', min: today(), dataset: { testid: 'promise-date' } });
  const submit = h('button', { type: 'submit', class: 'button secondary', dataset: { testid: 'promise-submit' } },
    'Promise to pay');
  const form = h('form', { class: 'promise-form', novalidate: true, dataset: { testid: 'promise-form' } },
    h('p', { class: 'hint' }, 'Cannot pay today? Tell us when you will: reminders and restrictions wait until then.'),
    h('div', { class: 'field-row' }, field(`Amount (${due.amountDue ? due.amountDue.unit : ''})`, amount),
      field('I will pay by', date)),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (busy(submit)) return;
    clearAlert();
    const value = amount.value.trim().replace(',', '.');
    if (!/^\d+(\.\d{1,2})?$/.test(value) || Number(value) <= 0) {
      invalid(form, amount, 'Enter the amount you will pay, e.g. 25.00.');
      return;
    }
    if (!date.value) {
      invalid(form, date, 'Choose the date by which you will pay.');
      return;
    }
    setBusy(submit, true, 'Saving…');
    try {
      await api.promiseToPay(due.accountId, value, date.value);
      ctx.go('#/bills', { flash: `Thank you: we noted your promise to pay by ${formatDate(date.value)}.` });
    } catch (err) {
      setBusy(submit, false);
      if (err instanceof ApiError && err.status === 401) { ctx.unauthorized(); return; }
      showAlert(form, err.message || 'Your promise could not be recorded.', { before: form.firstChild });
    }
  });
  card.appendChild(form);
  return card;
}

function dueCard(due, ctx) {
  const amount = Number(due.amountDue && due.amountDue.value);
  const owing = Number.isFinite(amount) && amount > 0;
  return h('article', { class: `card due-card${due.overdue ? ' is-overdue' : ''}`, dataset: { testid: 'bills-due' } },
    h('p', { class: 'money-label' }, `Amount due${due.account ? ` · ${due.account}` : ''}`),
    h('p', { class: 'money-amount', dataset: { testid: 'bills-due-amount' } }, money(due.amountDue)),
    h('p', { class: 'muted' }, owing && due.dueDate
      ? [due.overdue ? 'Was due on ' : 'Due by ', timeEl(due.dueDate, formatDate(due.dueDate)),
        due.billNo ? ` (bill ${due.billNo})` : '']
      : 'Nothing to pay.'),
    due.overdue && due.accountId ? overdueNotice(due, ctx) : null);
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
    due.length ? h('div', { class: 'lines' }, due.map((d) => dueCard(d, ctx))) : null,
    bills.length
      ? h('div', { class: 'card' }, h('div', { class: 'table-wrap' }, table))
      : h('div', { class: 'card empty', dataset: { testid: 'bills-empty' } }, h('p', null, 'You have no bills yet.')));
}
