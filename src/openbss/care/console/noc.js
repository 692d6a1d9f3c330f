// The network operations (NOC) view: open service problems with their impact, the alarm list with filters and its
// TMF642 tasks, the SLA dashboard and a KPI chart per object with its threshold lines (inline SVG, drawn here).
import { ApiError, get, post } from './api.js';
import { badge, field, h, humanize, select, table, when } from './dom.js';

const ALARM = '/tmf-api/alarm/v4';
const PROBLEM = '/tmf-api/serviceProblemManagement/v4/serviceProblem';
const ASSURANCE = '/api/assurance/v1';
const OPEN_PROBLEMS = 'inProgress,acknowledged,pending,held';
const SEVERITIES = ['critical', 'major', 'minor', 'warning', 'indeterminate'];
const SVG = 'http://www.w3.org/2000/svg';
const OPS = { GT: '>', GE: '≥', LT: '<', LE: '≤' };
/** How often the open problems and the alarms refresh by themselves (seconds; `#/noc?refresh=N` overrides it). */
const REFRESH_SECONDS = 15;

/** May this agent see the NOC view (assurance:read)? */
export function canSeeNoc(me) {
  const p = new Set(me?.permissions || []);
  return p.has('*') || p.has('*:read') || p.has('assurance:read');
}

function canWrite(me) {
  const p = new Set(me?.permissions || []);
  return p.has('*') || p.has('*:write') || p.has('assurance:write');
}

const q = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();

function sev(s) {
  const v = String(s || '').toLowerCase();
  const tone = v === 'critical' || v === 'major' ? 'bad' : v === 'minor' || v === 'warning' ? 'warn'
    : v === 'cleared' ? 'good' : 'neutral';
  return badge(v || 'unknown', tone);
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

/**
 * A line chart of a KPI's points ({time, value}) with horizontal threshold lines ({label, value, kind}), as an
 * inline SVG: labelled (role img, title and description), scaled to the data and the limits.
 */
export function kpiChart(title, points, limits, unit) {
  const W = 720; const H = 260; const L = 56; const R = 16; const T = 16; const B = 36;
  const times = points.map((p) => new Date(p.time).getTime());
  const values = points.map((p) => Number(p.value));
  const all = [...values, ...limits.map((l) => Number(l.value))].filter(Number.isFinite);
  let lo = all.length ? Math.min(...all) : 0; let hi = all.length ? Math.max(...all) : 1;
  if (hi === lo) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.1; lo -= pad; hi += pad;
  const t0 = times.length ? Math.min(...times) : 0; const t1 = times.length ? Math.max(...times) : 1;
  const x = (t) => L + (t1 === t0 ? (W - L - R) / 2 : ((t - t0) / (t1 - t0)) * (W - L - R));
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1));
  const desc = `${points.length} point(s)${unit ? ` in ${unit}` : ''}`
    + (values.length ? `, from ${fmt(Math.min(...values))} to ${fmt(Math.max(...values))}` : '')
    + (limits.length ? `; limits: ${limits.map((l) => `${l.label} ${l.value}`).join(', ')}` : '; no limit');
  const id = `chart-${Math.random().toString(36).slice(2, 8)}`;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'kpi-chart', role: 'img',
    'aria-labelledby': `${id}-t ${id}-d`, 'data-testid': 'kpi-chart' },
  svg('title', { id: `${id}-t` }, title), svg('desc', { id: `${id}-d` }, desc));
  // axes and grid: 4 value ticks, first and last time
  for (let i = 0; i <= 4; i += 1) {
    const v = lo + ((hi - lo) * i) / 4;
    root.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid-line' }),
      svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis-label' }, fmt(v)));
  }
  root.append(svg('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'axis' }),
    svg('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }));
  if (times.length) {
    const short = (t) => new Date(t).toISOString().slice(5, 16).replace('T', ' ');
    root.append(svg('text', { x: L, y: H - 12, class: 'axis-label' }, short(t0)),
      svg('text', { x: W - R, y: H - 12, 'text-anchor': 'end', class: 'axis-label' }, short(t1)));
  }
  for (const l of limits) {
    const v = Number(l.value);
    if (!Number.isFinite(v)) continue;
    root.append(svg('g', { class: `threshold ${l.kind}`, 'data-testid': 'threshold-line' },
      svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v) }),
      svg('text', { x: W - R - 4, y: y(v) - 5, 'text-anchor': 'end' }, `${l.label} ${l.value}`)));
  }
  if (points.length) {
    const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(times[i]).toFixed(1)},${y(values[i]).toFixed(1)}`).join(' ');
    root.append(svg('path', { d, class: 'series', 'data-testid': 'kpi-series' }));
    points.forEach((p, i) => root.append(svg('circle', { cx: x(times[i]).toFixed(1), cy: y(values[i]).toFixed(1),
      r: 3, class: 'point' }, svg('title', null, `${when(p.time)}: ${p.value}`))));
  }
  return root;
}

/** The NOC view; ``ui`` gives the console's page helpers ({ me, page, say, showError, button, link }). */
export async function nocView(ui, params = new URLSearchParams()) {
  const { me, page, say, showError, button, link } = ui;
  const problems = h('div', { dataset: { testid: 'noc-problems' } }, h('p', null, 'Loading…'));
  const alarms = h('div', { dataset: { testid: 'noc-alarms' } }, h('p', null, 'Loading…'));
  const slas = h('div', { dataset: { testid: 'noc-sla' } }, h('p', null, 'Loading…'));
  const chart = h('div', { dataset: { testid: 'noc-chart' }, 'aria-live': 'polite' });

  // ---- problems
  const loadProblems = async () => {
    const rows = await get(`${PROBLEM}?${q({ status: OPEN_PROBLEMS, limit: '50' })}`);
    problems.replaceChildren(rows.length ? table('Open service problems',
      ['Opened', 'Problem', 'Priority', 'Status', 'Services', 'Products', 'Customers', 'Ticket'],
      rows.map((p) => {
        const customers = (p.relatedParty || []).filter((r) => r.role === 'affectedCustomer');
        return [when(p.creationDate), p.name || p.description || p.reason || p.id, String(p.priority ?? '—'),
          badge(p.status),
          String(p.affectedNumberOfServices ?? (p.affectedService || []).length),
          String(p.affectedProductCount ?? 0),
          h('div', null, String(p.affectedCustomerCount ?? customers.length),
            customers.length ? h('ul', { class: 'plain' }, customers.slice(0, 3).map((c) => h('li', null,
              link(`#/customer/${encodeURIComponent(c.id)}`, c.name || c.id,
                { 'aria-label': `Customer 360 of ${c.name || c.id}`, dataset: { testid: 'problem-customer' } }))))
              : null),
          (p.troubleTicket || [])[0] ? link(`#/ticket/${encodeURIComponent(p.troubleTicket[0].id)}`,
            'Ticket', { 'aria-label': `Ticket of problem ${p.name || p.id}` }) : '—'];
      }), 'problems-table') : h('p', null, 'No open problem.'));
  };

  // ---- alarms
  const severity = select('severity', [['', 'Any'], ...SEVERITIES.map((s) => [s, humanize(s)])],
    { dataset: { testid: 'alarm-severity' } });
  const state = select('state', [['raised,updated', 'Open'], ['cleared', 'Cleared'], ['', 'Any']],
    { dataset: { testid: 'alarm-state' } });
  const object = h('input', { type: 'text', name: 'object', autocomplete: 'off', dataset: { testid: 'alarm-object' } });
  severity.value = params.get('severity') || '';
  state.value = params.get('state') ?? 'raised,updated';
  object.value = params.get('object') || '';
  const write = canWrite(me);

  const task = async (kind, alarm) => {
    const body = { alarmPattern: [{ id: alarm.id }] };
    if (kind === 'ackAlarms' || kind === 'clearAlarms') {
      body[kind === 'ackAlarms' ? 'ackUserId' : 'clearUserId'] = me.id;
      body[kind === 'ackAlarms' ? 'ackSystemId' : 'clearSystemId'] = 'OpenBSS console';
    }
    try {
      await post(`${ALARM}/${kind}`, body);
      say(kind === 'ackAlarms' ? `Alarm ${alarm.id} acknowledged` : `Alarm ${alarm.id} cleared`);
      await loadAlarms();
    } catch (err) { showError(alarms, err); }
  };

  const loadAlarms = async () => {
    const rows = await get(`${ALARM}/alarm?${q({ state: state.value, perceivedSeverity: severity.value,
      'alarmedObject.id': object.value.trim(), sort: '-alarmRaisedTime', limit: '100' })}`);
    alarms.replaceChildren(rows.length ? table('Alarms', ['Raised', 'Severity', 'Object', 'Problem', 'Count', 'State',
      'Acknowledged', ''], rows.map((a) => {
      const what = `${a.specificProblem || a.probableCause} on ${a.alarmedObject?.id}`;
      const acked = a.ackState === 'acknowledged';
      const open = a.state !== 'cleared';
      return [when(a.alarmRaisedTime), sev(a.perceivedSeverity),
        h('button', { type: 'button', class: 'linkish', 'aria-label': `Show the KPIs of ${a.alarmedObject?.id}`,
          onclick: () => { kpiObject.value = a.alarmedObject?.id || ''; loadChart(); } }, a.alarmedObject?.id || '—'),
        a.specificProblem || humanize(a.probableCause), String(a.occurrenceCount ?? 1), badge(a.state),
        acked ? h('span', null, badge('acknowledged', 'good'), a.ackUserId ? ` by ${a.ackUserId}` : '') : 'No',
        write && open ? h('div', { class: 'actions' },
          acked ? null : button('Acknowledge', { class: 'button small', 'aria-label': `Acknowledge ${what}`,
            dataset: { testid: 'alarm-ack' }, onclick: () => task('ackAlarms', a) }),
          button('Clear', { class: 'button small ghost', 'aria-label': `Clear ${what}`,
            dataset: { testid: 'alarm-clear' }, onclick: () => task('clearAlarms', a) })) : ''];
    }), 'alarms-table') : h('p', null, 'No alarm matches.'));
  };
  const filters = h('form', { class: 'filters', 'aria-label': 'Alarm filters' },
    field('Severity', severity), field('State', state), field('Managed object', object, 'Its id, e.g. agg-1'),
    h('button', { type: 'submit', class: 'button', dataset: { testid: 'alarm-filter' } }, 'Filter'));
  filters.addEventListener('submit', (e) => { e.preventDefault(); loadAlarms().catch((err) => showError(alarms, err)); });
  severity.addEventListener('change', () => loadAlarms().catch((err) => showError(alarms, err)));
  state.addEventListener('change', () => loadAlarms().catch((err) => showError(alarms, err)));

  // ---- SLA dashboard: evaluations and violations per SLA and period
  const loadSlas = async () => {
    const [defs, evaluations] = await Promise.all([get(`${ASSURANCE}/sla`), get(`${ASSURANCE}/slaEvaluation?limit=1000`)]);
    const groups = new Map();
    for (const e of evaluations) {
      const key = `${e.sla.id} ${e.period.startDateTime}`;
      const g = groups.get(key) || { sla: e.sla, period: e.period, count: 0, violations: 0, credited: 0 };
      g.count += 1;
      if ((e.violated || []).length) g.violations += 1;
      if (e.credit) g.credited += 1;
      groups.set(key, g);
    }
    const rows = [...groups.values()];
    const evaluated = new Set(rows.map((g) => g.sla.id));
    const pending = defs.filter((d) => !evaluated.has(d.id));
    slas.replaceChildren(...[
      rows.length ? table('SLA evaluations per period', ['SLA', 'Period', 'Evaluations', 'Violations', 'Credited'],
        rows.map((g) => [g.sla.name, `${when(g.period.startDateTime)} – ${when(g.period.endDateTime)}`,
          String(g.count), g.violations ? h('span', { class: 'warn' }, String(g.violations)) : h('span', { class: 'ok' }, '0'),
          String(g.credited)]), 'sla-table') : h('p', null, 'No SLA period evaluated yet.'),
      pending.length ? h('p', { class: 'muted' }, 'Not evaluated yet: ', pending.map((d) => d.name).join(', ')) : null,
    ].filter(Boolean));
  };

  // ---- KPI chart
  const kpiObject = h('input', { type: 'text', name: 'kpiObject', autocomplete: 'off', required: true,
    dataset: { testid: 'kpi-object' } });
  const kpiName = h('input', { type: 'text', name: 'kpi', autocomplete: 'off', dataset: { testid: 'kpi-name' } });
  const granularity = select('granularity', [['raw', 'Samples'], ['5min', '5 minutes'], ['hour', 'Hour'], ['day', 'Day']],
    { dataset: { testid: 'kpi-granularity' } });
  kpiObject.value = params.get('kpiObject') || '';
  kpiName.value = params.get('kpi') || '';
  granularity.value = params.get('granularity') || '5min';
  const hours = { raw: 24, '5min': 24, hour: 24 * 7, day: 24 * 90 };
  const loadChart = async () => {
    const obj = kpiObject.value.trim();
    if (!obj) { chart.replaceChildren(h('p', { class: 'muted' }, 'Name an object to see its KPIs.')); return; }
    const limits = await get(`${ASSURANCE}/kpi/thresholds?${q({ objectId: obj, limit: '1000' })}`);
    const names = kpiName.value.trim() ? [kpiName.value.trim()] : [...new Set(limits.map((l) => l.indicator))];
    if (!names.length) {
      chart.replaceChildren(h('p', null, `No threshold watches ${obj}: name a KPI to chart it.`));
      return;
    }
    const end = params.get('end') || new Date().toISOString();
    const start = new Date(new Date(end).getTime() - hours[granularity.value] * 3600e3).toISOString();
    const charts = await Promise.all(names.map(async (name) => {
      const series = await get(`${ASSURANCE}/kpi?${q({ objectId: obj, indicator: name, granularity: granularity.value,
        start, end, limit: '2000' })}`);
      const points = series.points.map((p) => ({ time: p.time, value: p.value ?? p.average }));
      const mine = limits.filter((l) => l.indicator === name);
      const lines = mine.flatMap((l) => [
        l.upper ? { label: `${humanize(l.severity)} ${OPS[l.upper.comparator] || '>'}`, value: l.upper.value,
          kind: 'upper' } : null,
        l.lower ? { label: `${humanize(l.severity)} ${OPS[l.lower.comparator] || '<'}`, value: l.lower.value,
          kind: 'lower' } : null].filter(Boolean));
      return h('figure', { class: 'kpi' }, kpiChart(`${name} on ${obj}`, points, lines, null),
        h('figcaption', null, `${name} on ${obj}: ${points.length} point(s); `,
          lines.length ? `limits ${lines.map((l) => `${l.label} ${l.value}`).join(', ')}` : 'no limit'));
    }));
    chart.replaceChildren(...charts);
  };
  const chartForm = h('form', { class: 'filters', 'aria-label': 'KPI chart' },
    field('Object', kpiObject, 'A resource or service id'), field('KPI', kpiName, 'Empty: every KPI with a threshold'),
    field('Granularity', granularity),
    h('button', { type: 'submit', class: 'button', dataset: { testid: 'kpi-show' } }, 'Show'));
  chartForm.addEventListener('submit', (e) => { e.preventDefault(); loadChart().catch((err) => showError(chart, err)); });

  const every = Math.max(1, Number(params.get('refresh')) || REFRESH_SECONDS);
  const stamp = h('p', { class: 'muted', dataset: { testid: 'noc-refreshed' } },
    `Problems and alarms refresh every ${every} s while this page is shown.`);
  page('Network operations', stamp,
    h('section', { class: 'card', 'aria-labelledby': 'noc-problems-h' },
      h('div', { class: 'card-head' }, h('h2', { id: 'noc-problems-h' }, 'Open service problems')), problems),
    h('section', { class: 'card', 'aria-labelledby': 'noc-alarms-h' },
      h('div', { class: 'card-head' }, h('h2', { id: 'noc-alarms-h' }, 'Alarms')), filters, alarms),
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'noc-sla-h' },
        h('div', { class: 'card-head' }, h('h2', { id: 'noc-sla-h' }, 'SLAs')), slas),
      h('section', { class: 'card', 'aria-labelledby': 'noc-kpi-h' },
        h('div', { class: 'card-head' }, h('h2', { id: 'noc-kpi-h' }, 'KPI chart')), chartForm, chart)));
  const guard = (where) => (err) => {
    if (err instanceof ApiError && err.status === 403) where.replaceChildren(h('p', null, 'Not allowed for your role.'));
    else showError(where, err);
  };
  await Promise.all([loadProblems().catch(guard(problems)), loadAlarms().catch(guard(alarms)),
    loadSlas().catch(guard(slas)), loadChart().catch(guard(chart))]);
  autoRefresh(every, stamp, [[problems, loadProblems, guard(problems)], [alarms, loadAlarms, guard(alarms)]]);
}

/**
 * Reload ``sections`` ([element, load, onError]) every ``seconds`` by polling, while the view is on screen: paused
 * while the tab is hidden (reloaded at once when it shows again), a section holding the keyboard focus is left as
 * it is (an agent about to press Acknowledge does not lose the button), one round at a time; stopped for good when
 * the view is left.
 */
function autoRefresh(seconds, stamp, sections) {
  let timer = null;
  let busy = false;
  const stop = () => { clearInterval(timer); timer = null; };
  const visibility = () => {
    if (!stamp.isConnected) { stop(); document.removeEventListener('visibilitychange', visibility); return; }
    if (document.hidden) stop();
    else { tick(); start(); }
  };
  const tick = async () => {
    if (!stamp.isConnected) { stop(); document.removeEventListener('visibilitychange', visibility); return; }
    if (busy || document.hidden) return;
    busy = true;
    try {
      await Promise.all(sections.filter(([el]) => !el.contains(document.activeElement))
        .map(([, load, onError]) => load().catch(onError)));
      stamp.textContent = `Problems and alarms refresh every ${seconds} s while this page is shown; `
        + `updated ${new Date().toLocaleTimeString()}.`;
      stamp.dataset.refreshes = String(Number(stamp.dataset.refreshes || 0) + 1);
    } finally { busy = false; }
  };
  const start = () => { if (!timer) timer = setInterval(tick, seconds * 1000); };
  document.addEventListener('visibilitychange', visibility);
  if (!document.hidden) start();
}
