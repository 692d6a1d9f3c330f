// The agent console: sign-in, type-ahead search, the customer 360 and the agents' actions, as hash routes.
import { ApiError, PATHS, clearToken, get, patch, post, setToken, token } from './api.js';
import { alertBox, badge, field, h, humanize, money, select, table, when } from './dom.js';
import { canSeeNoc, nocView } from './noc.js';

const view = () => document.getElementById('view');
const statusEl = () => document.getElementById('status');
let me = null;

const TRANSITIONS = {
  acknowledged: ['inProgress', 'pending', 'held', 'resolved', 'rejected', 'cancelled'],
  inProgress: ['pending', 'held', 'resolved', 'cancelled'],
  pending: ['inProgress', 'held', 'resolved', 'cancelled'],
  held: ['inProgress', 'pending', 'resolved', 'cancelled'],
  resolved: ['closed', 'inProgress'],
  closed: [], cancelled: [], rejected: [],
};
const FINAL_ORDER = ['completed', 'failed', 'cancelled', 'rejected', 'partial'];

function say(message, tone) {
  statusEl().textContent = message;
  statusEl().className = tone ? `status ${tone}` : 'status';
}

/** Render a page: its title (focused, for screen readers and keyboard users) and its content. */
function page(title, ...content) {
  const heading = h('h1', { tabindex: '-1', id: 'page-title' }, title);
  const root = view();
  root.replaceChildren(heading, ...content.flat().filter(Boolean));
  document.title = `${title} · Agent console`;
  heading.focus();
  return root;
}

function showError(where, err) {
  for (const el of document.querySelectorAll('[data-testid="alert"]')) el.remove();
  const box = alertBox(err instanceof ApiError ? err.message : String(err));
  where.prepend(box);
  box.focus();
  if (err instanceof ApiError && err.status === 401) { clearToken(); route(); }
}

function button(label, attrs = {}) { return h('button', { type: 'button', class: 'button', ...attrs }, label); }
function link(href, label, attrs = {}) { return h('a', { href, ...attrs }, label); }

function customerRef(id) {
  return [{ id, href: `${location.origin}/tmf-api/customerManagement/v4/customer/${id}`, '@referredType': 'Customer',
    role: 'customer' }];
}

function customerOf(doc) {
  const p = (doc.relatedParty || []).find((x) => x['@referredType'] === 'Customer');
  return p ? p.id : null;
}

// ---- sign-in --------------------------------------------------------------------------------------------
function signinView(message) {
  const area = h('textarea', { name: 'token', rows: 4, required: true, autocomplete: 'off', spellcheck: 'false',
    dataset: { testid: 'signin-token' } });
  const form = h('form', { class: 'card narrow', novalidate: true },
    field('Access token', area, 'Your operator\'s sign-in gives you a token. In the demo, '
      + '"openbss token --tenant demo --role csr_agent" prints one.'),
    h('button', { type: 'submit', class: 'button primary', dataset: { testid: 'signin-submit' } }, 'Sign in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = area.value.trim();
    if (!value) { showError(form, 'Paste your access token'); return; }
    setToken(value);
    try {
      me = await get(PATHS.me);
      location.hash = home();
      route();
    } catch (err) {
      clearToken();
      showError(form, err instanceof ApiError && [401, 403].includes(err.status)
        ? 'This token is not valid for the console (an agent or supervisor token is needed)' : err);
    }
  });
  const sso = h('div', { class: 'card narrow', hidden: true, dataset: { testid: 'signin-oidc' } });
  page('Sign in', message ? alertBox(message) : null, sso, form);
  get(PATHS.authConfig).then((cfg) => {
    if (!cfg || !cfg.oidc) return;
    sso.replaceChildren(h('p', null, 'Staff of the operator sign in with their company account.'),
      link(cfg.oidc.login, cfg.oidc.label, { class: 'button primary', dataset: { testid: 'signin-oidc-button' } }),
      h('p', { class: 'muted' }, 'Or paste an access token below.'));
    sso.hidden = false;
  }).catch(() => {});
}

// back from the operator's identity provider: the server hands the token over once (an HttpOnly cookie)
async function completeSignIn() {
  try {
    const out = await post(PATHS.authToken, {});
    setToken(out.access_token);
    me = await get(PATHS.me);
    location.hash = home();
  } catch (err) {
    clearToken();
    me = null;
    renderWho();
    signinView(err instanceof ApiError ? err.message : 'The sign-in could not be completed; sign in again');
  }
}

/** Care's views need care:read; a network operations account (assurance:read only) lands on the NOC view. */
function canCare() {
  const p = new Set(me?.permissions || []);
  return p.has('*') || p.has('*:read') || p.has('care:read');
}
const home = () => (canCare() || !canSeeNoc(me) ? '#/search' : '#/noc');

// the agent's own limit as the credit dialogs state it (it counts credits and top-ups of the last 24 hours)
function limitText() {
  return me?.adjustmentLimit
    ? `Your limit: ${money(me.adjustmentLimit)} in any 24 hours, credits and top-ups together; above it a supervisor approves.`
    : 'You are not limited.';
}

function renderWho() {
  const who = document.getElementById('who');
  const nav = document.getElementById('nav');
  if (!me) { who.hidden = true; nav.hidden = true; return; }
  const limit = me.adjustmentLimit ? `limit ${money(me.adjustmentLimit)}` : 'no limit';
  document.getElementById('agent').textContent = `${me.id} · ${me.roles.map(humanize).join(', ')}`
    + (canCare() ? ` · ${limit}` : '');
  who.hidden = false;
  nav.hidden = false;
  // the network operations view: only for roles that read assurance (the server enforces it anyway)
  document.getElementById('nav-noc-item').hidden = !canSeeNoc(me);
  for (const id of ['nav-search-item', 'nav-approvals-item']) document.getElementById(id).hidden = !canCare();
}

// ---- search ---------------------------------------------------------------------------------------------
function searchKind(q) {
  if (q.includes('@')) return ['email', q];
  if (/^\+?[\d\s().-]{6,}$/.test(q)) return ['phone', q.replace(/[\s().-]/g, '')];
  if (/^[0-9a-f]{8}-[0-9a-f-]{4,}$/i.test(q)) return ['id', q];
  return ['name', q];
}

async function runSearch(q) {
  const [kind, value] = searchKind(q);
  if (kind === 'id') {
    const [byAccount, ticket, customer] = await Promise.all([
      get(`${PATHS.search}?accountId=${encodeURIComponent(value)}&limit=10`).catch(() => []),
      get(`${PATHS.ticket}/${encodeURIComponent(value)}`).catch(() => null),
      get(`/tmf-api/customerManagement/v4/customer/${encodeURIComponent(value)}`).catch(() => null),
    ]);
    return { customers: [...(customer ? [customer] : []), ...byAccount], tickets: ticket ? [ticket] : [] };
  }
  if (kind === 'name' && value.length < 2) return { customers: [], tickets: [] };
  const customers = await get(`${PATHS.search}?${kind}=${encodeURIComponent(value)}&limit=10`);
  return { customers, tickets: [] };
}

function searchView() {
  const input = h('input', { type: 'search', name: 'q', autocomplete: 'off', dataset: { testid: 'search-input' },
    'aria-controls': 'search-results' });
  const results = h('ul', { id: 'search-results', class: 'results', dataset: { testid: 'search-results' } });
  const count = h('p', { class: 'hint', 'aria-live': 'polite', dataset: { testid: 'search-count' } });
  let timer = null;
  let seq = 0;
  const items = () => [...results.querySelectorAll('a')];
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      const mine = ++seq;
      if (!q) { results.replaceChildren(); count.textContent = ''; return; }
      try {
        const found = await runSearch(q);
        if (mine !== seq) return;  // a later keystroke won
        results.replaceChildren(
          ...found.customers.map((c) => h('li', null, link(`#/customer/${c.id}`, [
            h('strong', null, c.name || c.id), ' ', badge(c.status || 'unknown'),
            h('span', { class: 'muted' }, ` ${c.id}`)], { dataset: { testid: 'result-customer' } }))),
          ...found.tickets.map((t) => h('li', null, link(`#/ticket/${t.id}`, [
            h('strong', null, `Ticket: ${t.description || t.id}`), ' ', badge(t.status)],
          { dataset: { testid: 'result-ticket' } }))));
        const n = found.customers.length + found.tickets.length;
        count.textContent = n ? `${n} result${n > 1 ? 's' : ''} — arrow keys move through them` : 'No match';
      } catch (err) {
        if (mine === seq) { results.replaceChildren(); count.textContent = err.message; }
      }
    }, 200);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' && items().length) { e.preventDefault(); items()[0].focus(); }
  });
  results.addEventListener('keydown', (e) => {
    const list = items();
    const i = list.indexOf(document.activeElement);
    if (e.key === 'ArrowDown' && i < list.length - 1) { e.preventDefault(); list[i + 1].focus(); }
    if (e.key === 'ArrowUp') { e.preventDefault(); (i > 0 ? list[i - 1] : input).focus(); }
  });
  page('Find a customer', h('div', { class: 'card' },
    field('Search', input, 'Name, mobile number, e-mail, account number or ticket number'), count, results));
  input.focus();
}

// ---- customer 360 ---------------------------------------------------------------------------------------
function section(name, title, body, actions) {
  return h('section', { class: 'card', 'aria-labelledby': `h-${name}`, dataset: { testid: `section-${name}` } },
    h('div', { class: 'card-head' }, h('h2', { id: `h-${name}` }, title), actions || null), body);
}

function unavailable(data) { return data && !Array.isArray(data) && data.unavailable; }

// what a usage record cost: the sum of its rated parts (allowance and money), tax included where rated so
function charged(u) {
  const parts = (u.ratedProductUsage || []).map((r) => r.taxIncludedRatingAmount || r.taxExcludedRatingAmount)
    .filter((a) => a && a.value !== undefined);
  if (!parts.length) return undefined;
  const cents = parts.reduce((sum, a) => sum + Math.round(Number(a.value) * 1000), 0);
  return { unit: parts[0].unit, value: cents / 1000 };
}

function sectionOrUnavailable(v, name, title, render, actions) {
  const data = v[name];
  if (data === undefined) return null;
  if (unavailable(data)) {
    return section(name, title, h('p', { class: 'unavailable', dataset: { testid: `unavailable-${name}` } },
      badge('unavailable'), ' ', data.reason || 'This part of the customer is not available now.'));
  }
  return section(name, title, render(data), actions);
}

function contacts(...docs) {
  const out = [];
  for (const d of docs) {
    for (const m of (d && d.contactMedium) || []) {
      const c = m.characteristic || {};
      if (c.emailAddress) out.push(['E-mail', c.emailAddress]);
      if (c.phoneNumber) out.push([humanize(m.mediumType || 'phone'), c.phoneNumber]);
      if (c.city || c.street1) out.push(['Address', [c.street1, c.postCode, c.city].filter(Boolean).join(', ')]);
    }
  }
  return out;
}

function dl(pairs, testid) {
  return h('dl', { class: 'pairs', dataset: testid ? { testid } : undefined },
    pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v ?? '—')]));
}

function productMsisdn(p) {
  for (const c of p.productCharacteristic || []) {
    if (['msisdn', 'MSISDN', 'phoneNumber'].includes(c.name)) return String(c.value);
  }
  return '';
}

async function customerView(id) {
  page('Customer', h('p', null, 'Loading the customer…'));
  let v;
  try { v = await get(PATHS.c360(id)); } catch (err) { page('Customer'); showError(view(), err); return; }
  const c = v.customer || {};
  const party = v.party || {};
  const lines = Object.fromEntries((Array.isArray(v.balances) ? v.balances : []).map((b) => [b.productId, b.subscriber]));
  const actions = h('div', { class: 'actions' },
    link(`#/customer/${id}/raise`, 'Raise a ticket', { class: 'button primary', dataset: { testid: 'action-raise' } }),
    link(`#/customer/${id}/interaction`, 'Record an interaction', { class: 'button', dataset: { testid: 'action-interaction' } }),
    link(`#/customer/${id}/order`, 'Place an order', { class: 'button', dataset: { testid: 'action-order' } }),
    link(`#/customer/${id}/selfcare-reset`, 'Reset self-care access', { class: 'button',
      dataset: { testid: 'action-selfcare-reset' } }));
  const identity = section('identity', 'Identity and contact', dl([
    ['Name', c.name || [party.givenName, party.familyName].filter(Boolean).join(' ') || party.tradingName],
    ['Customer', c.id], ['Status', badge(c.status || 'unknown')], ['Segment', humanize(v.segment) || '—'],
    ...contacts(c, party),
  ], 'identity'));
  const sections = [
    sectionOrUnavailable(v, 'accounts', 'Accounts', (accounts) => table('Accounts',
      ['Account', 'Type', 'State', 'Balance due'],
      accounts.map((a) => [a.name || a.id, humanize(a['@baseType'] || a['@type']), badge(a.state || 'unknown'),
        a.openBalance ? money(a.openBalance) : '—']), 'accounts')),
    sectionOrUnavailable(v, 'products', 'Products and lines', (products) => table('Products',
      ['Product', 'Line', 'Status', 'Since'],
      products.map((p) => [p.name || p.id, productMsisdn(p) || lines[p.id] || '—', badge(p.status || 'unknown'),
        when(p.startDate)]),
      'products')),
    sectionOrUnavailable(v, 'balances', 'Live balances', (lines) => (!lines.length ? h('p', null, 'No line with a live balance.') : table('Balances',
      ['Line', 'Payment', 'Balance', 'Available', ''],
      lines.map((b) => [b.subscriber, humanize(b.paymentType), money({ value: b.balance, unit: b.currency }),
        money({ value: b.available, unit: b.currency }),
        b.paymentType === 'prepaid' ? link(`#/customer/${id}/topup/${encodeURIComponent(b.subscriber)}`,
          'Top up', { class: 'button small', 'aria-label': `Top up ${b.subscriber}` }) : '']), 'balances'))),
    sectionOrUnavailable(v, 'usage', 'Recent usage', (usage) => (usage.length ? table('Recent usage',
      ['Date', 'Type', 'Description', 'Amount'],
      usage.map((u) => [when(u.usageDate), humanize(u.usageType), u.description || '', money(charged(u))]), 'usage')
      : h('p', null, 'No usage yet.'))),
    sectionOrUnavailable(v, 'ordersInFlight', 'Orders in flight', (orders) => (orders.length ? table('Orders',
      ['Order', 'Placed', 'State'],
      orders.map((o) => [link(`#/order/${o.id}`, o.id), when(o.orderDate), badge(o.state)]), 'orders')
      : h('p', null, 'No order in flight.'))),
    sectionOrUnavailable(v, 'bills', 'Bills', (bills) => (bills.length ? table('Bills',
      ['Bill', 'Date', 'Amount', 'State', ''],
      bills.map((b) => [b.billNo || b.id, when(b.billDate), money(b.taxIncludedAmount),
        badge(b.category === 'creditNote' ? 'credit note' : b.state),
        b.category === 'creditNote' || ['new', 'onHold'].includes(b.state) ? ''
          : link(`#/customer/${id}/adjust/${b.id}`, 'Adjust', { class: 'button small',
            'aria-label': `Adjust bill ${b.billNo || b.id}`, dataset: { testid: 'adjust-bill' } })]), 'bills')
      : h('p', null, 'No bill yet.'))),
    sectionOrUnavailable(v, 'payments', 'Payments', (p) => [
      p.recent.length ? table('Recent payments', ['Date', 'Amount', 'Method', 'Status'],
        p.recent.map((x) => [when(x.paymentDate), money(x.amount), x.method || '—', badge(x.status || 'unknown')]),
        'payments') : h('p', null, 'No payment yet.'),
      p.methods.length ? table('Payment methods', ['Method', 'Details', 'Default', 'Status'],
        p.methods.map((m) => [humanize(m.type), m.masked || '—', m.isDefault ? 'Default' : '',
          badge(m.status || 'unknown')]), 'payment-methods') : h('p', null, 'No payment method on file.')]),
    sectionOrUnavailable(v, 'dunning', 'Collections', (d) => (d.length ? table('Dunning',
      ['Account', 'State', 'Step', 'Overdue', 'Since'],
      d.map((x) => [x.billingAccount?.name || x.billingAccount?.id, badge(x.state || 'none'),
        x.currentStep ? `${x.currentStep.sequence}. ${humanize(x.currentStep.action)}` : '—',
        x.overdueAmount ? money(x.overdueAmount) : '—', when(x.startDate)]), 'dunning')
      : h('p', { dataset: { testid: 'dunning-none' } }, 'No account in collections.'))),
    sectionOrUnavailable(v, 'tickets', 'Tickets', (t) => [
      h('p', { class: 'muted' }, `${t.total} in all · ${t.open} open · ${t.slaBreached} past their SLA`),
      t.recent.length ? table('Tickets', ['Ticket', 'Type', 'Priority', 'Status', 'Due'],
        t.recent.map((x) => [link(`#/ticket/${x.id}`, x.description || x.id, { dataset: { testid: 'ticket-link' } }),
          humanize(x.ticketType), humanize(x.priority), badge(x.status),
          x.sla?.resolutionBreached ? badge('breached', 'bad') : when(x.sla?.resolutionDue)]), 'tickets') : null]),
    sectionOrUnavailable(v, 'interactions', 'Interactions', (it) => (it.recent.length ? table('Interactions',
      ['Date', 'Reason', 'Channel', 'Direction'],
      it.recent.map((x) => [when(x.interactionDate?.startDateTime), x.reason || '',
        (x.channel || []).map((ch) => ch.name || ch.id).join(', '), humanize(x.direction)]), 'interactions')
      : h('p', null, 'No interaction yet.'))),
  ];
  page(c.name || 'Customer', actions, h('div', { class: 'grid' }, identity, ...sections));
  if ((v.unavailableSections || []).length) {
    say(`Some sections are unavailable: ${v.unavailableSections.map(humanize).join(', ')}`, 'warn');
  }
}

// ---- forms ----------------------------------------------------------------------------------------------
function form(testid, controls, submitLabel, onSubmit, backHref) {
  const submit = h('button', { type: 'submit', class: 'button primary', dataset: { testid: `${testid}-submit` } },
    submitLabel);
  const f = h('form', { class: 'card narrow', dataset: { testid }, novalidate: true }, controls,
    h('div', { class: 'actions' }, submit, backHref ? link(backHref, 'Cancel', { class: 'button ghost' }) : null));
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try { await onSubmit(); } catch (err) { showError(f, err); } finally { submit.disabled = false; }
  });
  return f;
}

function required(input, name) {
  const value = input.value.trim();
  if (!value) { input.setAttribute('aria-invalid', 'true'); throw new Error(`${name} is required`); }
  input.removeAttribute('aria-invalid');
  return value;
}

async function raiseView(customerId) {
  const queues = await get(PATHS.queues).catch(() => []);
  const description = h('textarea', { name: 'description', rows: 3, required: true, dataset: { testid: 'ticket-description' } });
  const type = select('type', [['network', 'Network'], ['billing', 'Billing'], ['service', 'Service'], ['other', 'Other']],
    { dataset: { testid: 'ticket-type' } });
  const severity = select('severity', [['minor', 'Minor'], ['major', 'Major'], ['critical', 'Critical']]);
  const priority = select('priority', [['low', 'Low'], ['medium', 'Medium'], ['high', 'High'], ['critical', 'Critical']],
    { dataset: { testid: 'ticket-priority' }, value: 'medium' });
  const queue = select('queue', [['', 'No queue'], ...queues.map((q) => [q.id, q.name])]);
  const back = `#/customer/${customerId}`;
  page('Raise a ticket', link(back, '← Back to the customer', { class: 'back' }), form('raise', [
    field('What is wrong', description), field('Type', type), field('Severity', severity),
    field('Priority', priority), field('Queue', queue)], 'Raise the ticket', async () => {
    const body = { description: required(description, 'The description'), ticketType: type.value,
      severity: severity.value, priority: priority.value, relatedParty: customerRef(customerId),
      channel: { id: 'phone', name: 'Phone call' } };
    if (queue.value) body.queue = { id: queue.value };
    const t = await post(PATHS.ticket, body);
    say(`Ticket ${t.id} raised`);
    location.hash = `#/ticket/${t.id}`;
  }, back));
}

async function ticketView(id) {
  let t;
  try { t = await get(`${PATHS.ticket}/${encodeURIComponent(id)}`); } catch (err) { page('Ticket'); showError(view(), err); return; }
  const customerId = customerOf(t);
  const next = TRANSITIONS[t.status] || [];
  const status = select('status', next.map((s) => [s, humanize(s)]), { dataset: { testid: 'ticket-next-status' } });
  const reason = h('input', { type: 'text', name: 'reason', dataset: { testid: 'ticket-reason' } });
  const note = h('textarea', { name: 'note', rows: 3, dataset: { testid: 'ticket-note' } });
  const sla = t.sla || {};
  const statusForm = next.length ? form('ticket-move', [field('New status', status), field('Reason', reason)],
    'Change the status', async () => {
      const body = { status: status.value };
      if (reason.value.trim()) body.statusChangeReason = reason.value.trim();
      await patch(`${PATHS.ticket}/${id}`, body);
      say(`Ticket is now ${humanize(status.value)}`);
      await ticketView(id);
    }) : h('p', null, 'This ticket is final.');
  const noteForm = form('ticket-add-note', [field('New note', note)], 'Add the note', async () => {
    const text = required(note, 'The note');
    await patch(`${PATHS.ticket}/${id}`, { note: [...(t.note || []), { text }] });
    say('Note added');
    await ticketView(id);
  });
  page(`Ticket: ${t.description || t.id}`,
    customerId ? link(`#/customer/${customerId}`, '← Back to the customer', { class: 'back' }) : null,
    h('div', { class: 'grid' },
      section('ticket', 'Ticket', dl([['Ticket', t.id], ['Status', h('span', { dataset: { testid: 'ticket-status' } },
        badge(t.status))], ['Type', humanize(t.ticketType)], ['Severity', humanize(t.severity)],
      ['Priority', humanize(t.priority)], ['Queue', t.queue?.name], ['Raised', when(t.creationDate)],
      ['SLA', sla.policy ? `${sla.policy.name} · ${humanize(sla.status)}` : 'None'],
      ['Resolution due', sla.resolutionBreached ? badge('breached', 'bad') : when(sla.resolutionDue)]])),
      section('work', 'Work the ticket', [statusForm, noteForm]),
      section('history', 'History', table('Status changes', ['When', 'Status', 'Reason'],
        (t.statusChange || []).map((s) => [when(s.changeDate), humanize(s.status), s.changeReason || '']))),
      section('notes', 'Notes', (t.note || []).length ? h('ul', { class: 'notes', dataset: { testid: 'ticket-notes' } },
        t.note.map((n) => h('li', null, h('p', null, n.text), h('p', { class: 'muted' }, `${n.author || ''} · ${when(n.date)}`))))
        : h('p', null, 'No note yet.'))));
}

function interactionView(customerId) {
  const reason = h('input', { type: 'text', name: 'reason', required: true, dataset: { testid: 'interaction-reason' } });
  const channel = select('channel', [['phone', 'Phone call'], ['email', 'E-mail'], ['chat', 'Chat'], ['shop', 'Shop visit']]);
  const direction = select('direction', [['inbound', 'Inbound'], ['outbound', 'Outbound']]);
  const notes = h('textarea', { name: 'notes', rows: 3 });
  const back = `#/customer/${customerId}`;
  page('Record an interaction', link(back, '← Back to the customer', { class: 'back' }), form('interaction', [
    field('Reason', reason), field('Channel', channel), field('Direction', direction), field('Notes', notes)],
  'Record it', async () => {
    const body = { reason: required(reason, 'The reason'), direction: direction.value, status: 'completed',
      interactionDate: { startDateTime: new Date().toISOString() }, relatedParty: customerRef(customerId),
      channel: [{ id: channel.value, name: channel.selectedOptions[0].textContent,
        href: `${location.origin}/api/care/v1/channel/${channel.value}` }] };
    if (notes.value.trim()) body.note = [{ text: notes.value.trim() }];
    await post(PATHS.interaction, body);
    say('Interaction recorded');
    location.hash = back;
  }, back));
}

async function specFields(offering) {
  const specId = offering.productSpecification?.id;
  if (!specId) return [];
  const spec = await get(`/tmf-api/productCatalogManagement/v4/productSpecification/${encodeURIComponent(specId)}`)
    .catch(() => null);
  const out = [];
  for (const ch of spec?.productSpecCharacteristic || []) {
    const values = (ch.productSpecCharacteristicValue || []).filter((x) => x.value !== undefined);
    if (!values.length) continue;
    const def = values.find((x) => x.isDefault) || values[0];
    const control = select(ch.name, values.map((x) => [JSON.stringify(x.value), String(x.value)]),
      { value: JSON.stringify(def.value), dataset: { testid: `char-${ch.name}` } });
    out.push({ name: ch.name, control, label: humanize(ch.name) });
  }
  return out;
}

async function orderView(customerId) {
  const back = `#/customer/${customerId}`;
  const [offerings, c360] = await Promise.all([
    get(`${PATHS.offerings}?lifecycleStatus=Active&limit=100`), get(PATHS.c360(customerId))]);
  const accounts = Array.isArray(c360.accounts)
    ? c360.accounts.filter((a) => (a['@baseType'] || a['@type']) === 'BillingAccount') : [];
  // what the call centre may sell: offerings without sales channels, or offered to 'callCenter'
  const sellable = offerings.filter((o) => !(o.channel || []).length || o.channel.some((ch) => ch.id === 'callCenter'));
  const offering = select('offering', sellable.map((o) => [o.id, o.name]), { dataset: { testid: 'order-offering' } });
  const account = select('account', accounts.map((a) => [a.id, a.name || a.id]), { dataset: { testid: 'order-account' } });
  const chars = h('div', { class: 'chars' });
  let fields = [];
  let asked = 0;
  const refresh = async () => {
    const mine = ++asked;
    const got = await specFields(sellable.find((o) => o.id === offering.value) || {});
    if (mine !== asked) return;  // the agent chose another offering meanwhile
    fields = got;
    chars.replaceChildren(...fields.map((f) => field(f.label, f.control)));
  };
  offering.addEventListener('change', refresh);
  const cartBox = h('div', { dataset: { testid: 'cart' } });
  page('Place an order', link(back, '← Back to the customer', { class: 'back' }),
    form('order', [field('Offering', offering), chars, field('Billing account', account)], 'Add to the cart', async () => {
      const item = { id: '1', action: 'add', quantity: 1, productOffering: { id: offering.value } };
      if (fields.length) {
        item.product = { productCharacteristic: fields.map((f) => ({ name: f.name, value: JSON.parse(f.control.value) })) };
      }
      const cart = await post(PATHS.cart, { relatedParty: customerRef(customerId), cartItem: [item] });
      const totals = (cart.cartTotalPrice || []).map((p) => `${humanize(p.priceType)} ${money(p.price?.taxIncludedAmount || p.price?.dutyFreeAmount)}`);
      const place = button('Place the order', { class: 'button primary', dataset: { testid: 'order-place' } });
      place.addEventListener('click', async () => {
        place.disabled = true;
        try {
          const order = await post(`${PATHS.cart}/${cart.id}/checkout`, {
            billingAccount: account.value ? { id: account.value } : undefined, channel: [{ id: 'callCenter', name: 'Call centre' }],
          }, { 'Idempotency-Key': `console-${cart.id}` });
          say(`Order ${order.id} placed`);
          location.hash = `#/order/${order.id}`;
        } catch (err) { place.disabled = false; showError(cartBox, err); }
      });
      cartBox.replaceChildren(h('section', { class: 'card narrow', 'aria-labelledby': 'h-cart' },
        h('h2', { id: 'h-cart' }, 'Cart'), h('p', null, `${offering.selectedOptions[0].textContent}`),
        h('p', { class: 'muted' }, totals.join(' · ') || 'No price'), place));
      place.focus();
    }, back), cartBox);
  await refresh();
}

let orderTimer = null;
async function trackOrderView(id) {
  let o;
  try { o = await get(`${PATHS.order}/${encodeURIComponent(id)}`); } catch (err) { page('Order'); showError(view(), err); return; }
  const customerId = customerOf(o);
  const done = FINAL_ORDER.includes(o.state);
  const content = [
    customerId ? link(`#/customer/${customerId}`, '← Back to the customer', { class: 'back' }) : null,
    section('order', 'Order', [dl([['Order', o.id], ['State', h('span', { dataset: { testid: 'order-state' } },
      badge(o.state))], ['Placed', when(o.orderDate)], ['Completed', when(o.completionDate)]]),
    table('Items', ['Item', 'Offering', 'Action', 'State'], (o.productOrderItem || []).map((i) => [i.id,
      i.productOffering?.name || i.productOffering?.id, humanize(i.action), badge(i.state)])),
    h('p', { class: done ? '' : 'muted', dataset: { testid: 'order-progress' } },
      done ? (o.state === 'completed' ? 'Activated: the products are live.' : `The order ended ${humanize(o.state)}.`)
        : 'Activation in progress — this page follows it.')]),
  ];
  if (document.getElementById('page-title')?.dataset.order === id) {
    view().replaceChildren(document.getElementById('page-title'), ...content.filter(Boolean));
  } else {
    page(`Order ${o.id}`, ...content);
    document.getElementById('page-title').dataset.order = id;
  }
  clearTimeout(orderTimer);
  if (!done) orderTimer = setTimeout(() => { if (location.hash === `#/order/${id}`) trackOrderView(id); }, 1000);
  else say(o.state === 'completed' ? 'Order activated' : `Order ${humanize(o.state)}`);
}

async function adjustView(customerId, billId) {
  const back = `#/customer/${customerId}`;
  const bill = await get(`/tmf-api/customerBillManagement/v4/customerBill/${encodeURIComponent(billId)}`);
  const amount = h('input', { type: 'text', inputmode: 'decimal', name: 'amount', required: true,
    dataset: { testid: 'adjust-amount' } });
  const reason = h('input', { type: 'text', name: 'reason', required: true, dataset: { testid: 'adjust-reason' } });
  const limit = limitText();
  const result = h('div', { dataset: { testid: 'adjust-result' }, 'aria-live': 'polite' });
  page(`Adjust bill ${bill.billNo || bill.id}`, link(back, '← Back to the customer', { class: 'back' }),
    dl([['Bill', bill.billNo || bill.id], ['Amount', money(bill.taxIncludedAmount)], ['Date', when(bill.billDate)]]),
    form('adjust', [field('Credit, tax included', amount, limit), field('Reason', reason)], 'Apply the credit', async () => {
      const out = await post(PATHS.adjust, { bill: { id: billId }, amount: required(amount, 'The amount'),
        reason: required(reason, 'The reason'), customer: { id: customerId } });
      if (out.status === 'applied') {
        const note = out.creditNote;
        result.replaceChildren(h('p', { class: 'ok' }, `Credit note ${note.billNo || note.id} issued for ${money(note.taxIncludedAmount)}.`));
        say('Credit applied');
      } else {
        result.replaceChildren(h('p', { class: 'warn' },
          `Above your limit: approval ${out.approval.id} was sent to a supervisor.`));
        say('Approval requested');
      }
    }, back), result);
}

function topupView(customerId, subscriber) {
  const back = `#/customer/${customerId}`;
  const amount = h('input', { type: 'text', inputmode: 'decimal', name: 'amount', required: true, dataset: { testid: 'topup-amount' } });
  const reason = h('input', { type: 'text', name: 'reason', dataset: { testid: 'topup-reason' } });
  const limit = limitText();
  const result = h('div', { dataset: { testid: 'topup-result' }, 'aria-live': 'polite' });
  page(`Top up ${subscriber}`, link(back, '← Back to the customer', { class: 'back' }),
    form('topup', [field('Amount', amount, limit), field('Reason (optional)', reason)], 'Top up',
      async () => {
        const out = await post(PATHS.topUp, { subscriber, amount: required(amount, 'The amount'),
          reason: reason.value.trim() || undefined, customer: { id: customerId } });
        if (out.status === 'pendingApproval') {
          result.replaceChildren(h('p', { class: 'warn' },
            `Above your limit: approval ${out.approval.id} was sent to a supervisor.`));
          say('Approval requested');
          return;
        }
        say(`Topped up: balance ${money(out.balance)}`);
        location.hash = back;
      }, back), result);
}

async function selfcareResetView(customerId) {
  const back = `#/customer/${customerId}`;
  const reason = h('input', { type: 'text', name: 'reason', dataset: { testid: 'reset-reason' } });
  const result = h('div', { dataset: { testid: 'reset-result' }, 'aria-live': 'polite' });
  page('Reset self-care access', link(back, '← Back to the customer', { class: 'back' }),
    h('p', null, 'Ends every self-care session of the customer and unlinks their sign-in accounts: their next '
      + 'sign-in proves again who they are (a verified e-mail or a code sent to one of their lines). They are sent a '
      + 'sign-in link.'),
    form('selfcare-reset', [field('Reason', reason, 'For example: lost phone, caller verified')], 'Reset access',
      async () => {
        const out = await post(PATHS.selfcareReset, { customer: { id: customerId }, reason: reason.value.trim() || undefined });
        const told = out.notified ? `A sign-in link was sent by ${out.notified.channel} to ${out.notified.to}.`
          : 'No e-mail or mobile number on file: no sign-in link was sent.';
        result.replaceChildren(h('p', { class: 'ok' }, `Access reset: ${out.sessionsRevoked} session(s) ended, `
          + `${out.identitiesUnlinked} sign-in account(s) unlinked. ${told}`));
        say('Self-care access reset');
      }, back), result);
}

const target = (a) => (a.kind === 'topUp' ? `Top-up of ${a.subscriber}` : `Bill ${a.bill?.id}`);

async function approvalsView() {
  const filter = select('status', [['pending', 'Pending'], ['approved', 'Approved'], ['rejected', 'Rejected']],
    { dataset: { testid: 'approvals-filter' } });
  const list = h('div', { dataset: { testid: 'approvals' } });
  const load = async () => {
    const rows = await get(`${PATHS.approvals}?status=${filter.value}`);
    list.replaceChildren(rows.length ? table('Approvals', ['Requested', 'By', 'For', 'Amount', 'Reason', 'Status', ''],
      rows.map((a) => [when(a.requestedAt), a.requestedBy, target(a), money(a.amount), a.reason, badge(a.status),
        a.status === 'pending' && me?.canApprove && a.requestedBy !== me.id ? h('div', { class: 'actions' },
          decide(a, true), decide(a, false)) : (a.decidedBy ? `by ${a.decidedBy}` : '')]), 'approvals-table')
      : h('p', null, 'Nothing here.'));
  };
  const decide = (a, approve) => {
    const b = button(approve ? 'Approve' : 'Reject', { class: `button small ${approve ? 'primary' : ''}`,
      'aria-label': `${approve ? 'Approve' : 'Reject'} ${money(a.amount)} ${a.kind === 'topUp' ? 'top-up of' : 'on bill'} ${a.kind === 'topUp' ? a.subscriber : a.bill.id}`,
      dataset: { testid: approve ? 'approve' : 'reject' } });
    b.addEventListener('click', async () => {
      try {
        await post(`${PATHS.approvals}/${a.id}/${approve ? 'approve' : 'reject'}`, {});
        say(approve ? (a.kind === 'topUp' ? 'Approved: the line is topped up' : 'Approved: the credit note is issued') : 'Rejected');
        await load();
      } catch (err) { showError(list, err); }
    });
    return b;
  };
  filter.addEventListener('change', load);
  page('Approvals', h('div', { class: 'card' }, field('Show', filter,
    me?.canApprove ? 'Adjustments above agents\' limits, waiting for a supervisor' : 'Your requests'), list));
  await load();
}

// ---- routing --------------------------------------------------------------------------------------------
async function route() {
  say('');
  const hash = location.hash || '#/search';
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (hash.startsWith(`#/${a.dataset.nav}`)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (hash === '#/signed-in') { await completeSignIn(); return; }
  if (hash.startsWith('#/signin')) {
    const error = new URLSearchParams(hash.split('?')[1] || '').get('error');
    if (!token() || error) { clearToken(); me = null; renderWho(); signinView(error || undefined); return; }
  }
  if (!token()) { me = null; renderWho(); signinView(); return; }
  if (!me) {
    try { me = await get(PATHS.me); } catch { clearToken(); me = null; renderWho(); signinView('Please sign in again'); return; }
  }
  renderWho();
  const parts = hash.slice(2).split('?')[0].split('/').map(decodeURIComponent);
  try {
    if (parts[0] === 'customer' && parts[2] === 'raise') await raiseView(parts[1]);
    else if (parts[0] === 'customer' && parts[2] === 'interaction') interactionView(parts[1]);
    else if (parts[0] === 'customer' && parts[2] === 'order') await orderView(parts[1]);
    else if (parts[0] === 'customer' && parts[2] === 'adjust') await adjustView(parts[1], parts[3]);
    else if (parts[0] === 'customer' && parts[2] === 'topup') topupView(parts[1], parts[3]);
    else if (parts[0] === 'customer' && parts[2] === 'selfcare-reset') await selfcareResetView(parts[1]);
    else if (parts[0] === 'customer') await customerView(parts[1]);
    else if (parts[0] === 'ticket') await ticketView(parts[1]);
    else if (parts[0] === 'order') await trackOrderView(parts[1]);
    else if (parts[0] === 'approvals') await approvalsView();
    else if (parts[0] === 'noc') {
      await nocView({ me, page, say, showError, button, link }, new URLSearchParams(hash.split('?')[1] || ''));
    }
    else if (!canCare() && canSeeNoc(me)) { location.hash = '#/noc'; return; }
    else searchView();
  } catch (err) {
    showError(view(), err);
  }
}

document.getElementById('signout').addEventListener('click', () => {
  clearToken();
  me = null;
  location.hash = '#/search';
  route();
});
window.addEventListener('hashchange', route);

route();
