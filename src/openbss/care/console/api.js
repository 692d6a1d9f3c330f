// The console's calls to the OpenBSS APIs, with the agent's bearer token (kept for the browser tab only).

const KEY = 'openbss.console.token';

export function token() { return sessionStorage.getItem(KEY); }
export function setToken(t) { sessionStorage.setItem(KEY, t); }
export function clearToken() { sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.reason)) || `request failed (${status})`);
    this.status = status;
    this.body = body;
  }
}

export async function call(method, path, body, extraHeaders = {}) {
  const headers = { Accept: 'application/json', ...extraHeaders };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { message: text }; }
  if (!r.ok) throw new ApiError(r.status, data);
  return { data, status: r.status, total: Number(r.headers.get('X-Total-Count') || 0) };
}

export const get = (p) => call('GET', p).then((r) => r.data);
export const post = (p, b, hd) => call('POST', p, b ?? {}, hd).then((r) => r.data);
export const patch = (p, b) => call('PATCH', p, b).then((r) => r.data);

export const PATHS = {
  me: '/api/care/v1/agent/me',
  search: '/tmf-api/customerManagement/v4/customerSearch',
  c360: (id) => `/tmf-api/customerManagement/v4/customer360/${encodeURIComponent(id)}`,
  ticket: '/tmf-api/troubleTicket/v4/troubleTicket',
  interaction: '/tmf-api/partyInteraction/v4/partyInteraction',
  queues: '/api/care/v1/queue',
  offerings: '/tmf-api/productCatalogManagement/v4/productOffering',
  cart: '/tmf-api/shoppingCart/v4/shoppingCart',
  order: '/tmf-api/productOrderingManagement/v4/productOrder',
  adjust: '/api/care/v1/billAdjustment',
  approvals: '/api/care/v1/approval',
  topUp: '/api/care/v1/topUp',
  selfcareReset: '/api/care/v1/selfcareAccessReset',
  authConfig: '/console/auth/config',
  authToken: '/console/auth/token',
};
