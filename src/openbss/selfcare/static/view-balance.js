// Balance: money and allowances per line (RetrieveCurrentBalance).
import { api, ApiError } from './api.js';
import { h, showAlert, clearAlert, badge, stateTone, humanize, formatMoney, formatPercent, formatDate, formatDateTime,
  timeEl, busy, setBusy } from './dom.js';

const UNIT_LABELS = { data: 'Data', voice: 'Voice', sms: 'SMS', money: 'Money' };

/**
 * Share of the allowance used, 0–100. Computed from used / initial when those are numbers; otherwise
 * percentUsed, which the contract's example gives as a percentage (0.63 for 64 MiB of 10 GiB).
 */
export function percentUsed(a) {
  const clamp = (v) => Math.min(100, Math.max(0, v));
  const initial = Number(a.initial);
  if (a.initial !== null && a.initial !== undefined && Number.isFinite(initial) && initial > 0) {
    const used = Number(a.used);
    if (a.used !== null && a.used !== undefined && Number.isFinite(used)) return clamp((used / initial) * 100);
    const remaining = Number(a.remaining);
    if (a.remaining !== null && a.remaining !== undefined && Number.isFinite(remaining)) {
      return clamp(((initial - remaining) / initial) * 100);
    }
  }
  const pct = Number(a.percentUsed);
  return a.percentUsed !== null && a.percentUsed !== undefined && Number.isFinite(pct) ? clamp(pct) : null;
}

function allowanceRow(a) {
  const unit = UNIT_LABELS[a.unit] || humanize(a.unit) || 'Allowance';
  const pct = percentUsed(a);
  const remaining = a.remainingDisplay ?? (a.remaining ?? '');
  const unlimited = String(remaining).toLowerCase() === 'unlimited';
  const amount = unlimited ? 'Unlimited'
    : a.initialDisplay ? `${remaining} of ${a.initialDisplay} left` : `${remaining} left`;
  const level = pct === null ? '' : pct >= 95 ? ' level-bad' : pct >= 80 ? ' level-warn' : '';
  return h('li', { class: `allowance unit-${String(a.unit || 'other').replace(/[^a-z]/gi, '')}`, dataset: { testid: 'allowance' } },
    h('div', { class: 'allowance-head' },
      h('span', { class: 'allowance-name' }, h('span', { class: 'unit-tag' }, unit), ' ', String(a.name ?? '')),
      h('span', { class: 'allowance-amount' }, amount)),
    pct === null ? null : h('progress', {
      class: `usage-bar${level}`, max: '100', value: String(Math.round(pct * 100) / 100),
      'aria-label': `${unit}: ${formatPercent(pct)} used`,
    }, `${formatPercent(pct)} used`),
    h('div', { class: 'allowance-foot' },
      h('span', null, pct === null ? '' : `${formatPercent(pct)} used`),
      a.validTo ? h('span', null, 'valid until ', timeEl(a.validTo, formatDate(a.validTo))) : null));
}

function lineCard(line, index) {
  const money = line.money || {};
  const postpaid = String(line.paymentType).toLowerCase() === 'postpaid';
  const titleId = `line-${index}`;
  const remaining = Number(money.remaining);
  const allowances = Array.isArray(line.allowances) ? line.allowances : [];
  const status = String(line.status || '').toLowerCase();

  const meta = h('dl', { class: 'money-meta' },
    h('div', null, h('dt', null, 'Reserved'), h('dd', null, formatMoney(money.reserved ?? 0, money.currency))),
    postpaid && money.creditLimit !== null && money.creditLimit !== undefined
      ? h('div', null, h('dt', null, 'Credit limit'), h('dd', null, formatMoney(money.creditLimit, money.currency)))
      : null);

  return h('article', { class: 'card line-card', 'aria-labelledby': titleId, dataset: { testid: 'balance-line' } },
    h('header', { class: 'line-head' },
      h('h2', { id: titleId, class: 'mono' }, String(line.msisdn ?? 'Line')),
      h('span', { class: 'badges' },
        badge(humanize(line.paymentType) || 'Line', 'info'),
        status && status !== 'active' ? badge(humanize(line.status), stateTone(line.status)) : null)),
    // postpaid: the main balance goes below zero as charges accrue; show them as this period's charges
    h('div', { class: 'money' },
      h('p', { class: 'money-label' }, postpaid ? 'Charges this period' : 'Remaining credit'),
      h('p', { class: `money-amount${!postpaid && Number.isFinite(remaining) && remaining < 0 ? ' negative' : ''}`,
        dataset: { testid: 'balance-money' } },
        formatMoney(postpaid ? (remaining < 0 ? String(money.remaining).replace(/^-/, '') : '0') : money.remaining,
          money.currency)),
      meta),
    h('h3', { class: 'section-title' }, 'Allowances'),
    allowances.length
      ? h('ul', { class: 'allowances' }, allowances.map(allowanceRow))
      : h('p', { class: 'muted' }, 'No allowances on this line.'));
}

export async function balanceView(ctx) {
  const data = await api.balance();
  const updated = h('p', { class: 'muted updated' });
  const lines = h('div', { class: 'lines', 'aria-live': 'off' });
  const refresh = h('button', { type: 'button', class: 'button secondary', dataset: { testid: 'balance-refresh' } },
    h('span', { class: 'icon-refresh', 'aria-hidden': 'true' }), 'Refresh');
  const root = h('div', { class: 'view view-balance' },
    h('div', { class: 'view-head' },
      h('div', null, h('h1', { tabindex: '-1' }, 'Balance'), updated),
      refresh),
    lines);

  function render(balance) {
    const asOf = balance && balance.asOf;
    updated.replaceChildren('Updated at ', asOf ? timeEl(asOf, formatDateTime(asOf)) : 'an unknown time');
    const list = Array.isArray(balance && balance.lines) ? balance.lines : [];
    lines.replaceChildren(...(list.length
      ? list.map(lineCard)
      : [h('div', { class: 'card empty' }, h('p', null, 'You have no lines with a balance.'))]));
  }

  refresh.addEventListener('click', async () => {
    if (busy(refresh)) return;
    setBusy(refresh, true);
    root.setAttribute('aria-busy', 'true');
    try {
      render(await api.balance());
      clearAlert();
      ctx.setStatus('Balance updated.');
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        ctx.unauthorized();
        return;
      }
      showAlert(root, err.message, { before: lines });
    } finally {
      root.setAttribute('aria-busy', 'false');
      setBusy(refresh, false);
    }
  });

  render(data);
  return root;
}
