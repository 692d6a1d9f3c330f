// HTTP client for the self-care API (docs/selfcare.md). Every request is same-origin JSON;
// mutating requests carry the CSRF token read from the sc_csrf cookie.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export function csrfToken() {
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === 'sc_csrf') {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return part.slice(eq + 1).trim();
      }
    }
  }
  return '';
}

const MUTATING = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

export async function request(method, url, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers };
  if (MUTATING.has(method)) {
    headers['Content-Type'] = 'application/json';
    headers['X-CSRF-Token'] = csrfToken();
    if (body !== undefined) init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, 'NETWORK', 'We could not reach the server. Check your connection and try again.');
  }
  if (response.status === 204) return null;
  let data = null;
  const type = response.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message = data && typeof data.message === 'string' && data.message
      ? data.message
      : defaultMessage(response.status);
    const code = data && typeof data.code === 'string' ? data.code : String(response.status);
    throw new ApiError(response.status, code, message);
  }
  return data;
}

function defaultMessage(status) {
  if (status === 401) return 'Please sign in.';
  if (status === 403) return 'This action is not allowed. Reload the page and try again.';
  if (status === 404) return 'We could not find what you asked for.';
  if (status === 429) return 'Too many attempts. Please wait a little and try again.';
  return `Something went wrong on our side (HTTP ${status}). Please try again.`;
}

const BASE = '/selfcare';

export const api = {
  config: () => request('GET', `${BASE}/api/config`),
  session: () => request('GET', `${BASE}/api/session`),
  pendingLink: () => request('GET', `${BASE}/api/link`),
  sendLinkCode: (msisdn) => request('POST', `${BASE}/api/link/msisdn`, { msisdn }),
  verifyLinkCode: (code) => request('POST', `${BASE}/api/link/verify`, { code }),
  logout: () => request('POST', `${BASE}/auth/logout`),
  customer: () => request('GET', `${BASE}/api/customer`),
  updateCustomer: (changes) => request('PATCH', `${BASE}/api/customer`, changes),
  verifyEmail: (code) => request('POST', `${BASE}/api/customer/email-verification`, { code }),
  balance: () => request('GET', `${BASE}/api/balance`),
  usageMonths: () => request('GET', `${BASE}/api/usage/months`),
  usage: (month) => request('GET', `${BASE}/api/usage?month=${encodeURIComponent(month)}`),
  loginUrl: (providerId) => `${BASE}/auth/login/${encodeURIComponent(providerId)}`,
  pdfUrl: (month) => `${BASE}/api/usage/${encodeURIComponent(month)}.pdf`,
  bills: () => request('GET', `${BASE}/api/bills`),
  billPdfUrl: (id) => `${BASE}/api/bills/${encodeURIComponent(id)}.pdf`,
  payDue: (account) => request('POST', `${BASE}/api/bills/pay`, { account }),
  promiseToPay: (account, amount, promisedDate) =>
    request('POST', `${BASE}/api/bills/promise`, { account, amount, promisedDate }),
};
