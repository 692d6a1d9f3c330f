// Self-care portal: boot, theme, hash router and the signed-in shell.
import { api, ApiError } from './api.js';
import { h, clearAlert, showAlert } from './dom.js';
import { signinView, linkView } from './view-auth.js';
import { profileView } from './view-profile.js';
import { balanceView } from './view-balance.js';
import { usageView } from './view-usage.js';
import { billsView } from './view-bills.js';

const ROUTES = {
  '/signin': { view: signinView, access: 'public', title: 'Sign in' },
  '/link': { view: linkView, access: 'link', title: 'Link your account' },
  '/profile': { view: profileView, access: 'customer', title: 'Profile', nav: 'profile' },
  '/balance': { view: balanceView, access: 'customer', title: 'Balance', nav: 'balance' },
  '/usage': { view: usageView, access: 'customer', title: 'Usage', nav: 'usage' },
  '/bills': { view: billsView, access: 'customer', title: 'My bills', nav: 'bills' },
};

const state = {
  config: null,
  session: null, // the GET /session body while signed in
  flash: null, // [text, tone] for the status region after the next navigation
};

let navToken = 0;
const $ = (id) => document.getElementById(id);

// ---- helpers shared with the views -------------------------------------------------------------

function operatorName() {
  const name = state.config && state.config.operator && state.config.operator.name;
  return typeof name === 'string' && name.trim() ? name.trim() : 'Self-care';
}

/** The polite status region: `tone` is 'success' (default) or 'info'. */
function setStatus(text, tone = 'success') {
  const el = $('status');
  el.textContent = text || '';
  el.classList.toggle('status-info', tone === 'info');
}

function setTitle(title) {
  const op = operatorName();
  document.title = op === 'Self-care' ? `${title} · Self-care` : `${title} · ${op} self-care`;
}

/** Navigate to a hash route. `flash` is shown in the status region once the view is displayed. */
function go(hash, { replace = false, flash = null, tone = 'success' } = {}) {
  if (flash) state.flash = [flash, tone];
  if (location.hash === hash) {
    route();
  } else if (replace) {
    location.replace(hash);
  } else {
    location.hash = hash;
  }
}

function unauthorized() {
  const wasSignedIn = Boolean(state.session);
  state.session = null;
  renderShell(null);
  go('#/signin', { replace: true, flash: wasSignedIn ? 'Your session has ended. Please sign in again.' : null, tone: 'info' });
}

function setSession(session) {
  state.session = session;
}

function focusHeading(container) {
  const heading = container.querySelector('h1');
  if (heading) {
    if (!heading.hasAttribute('tabindex')) heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: false });
  }
}

function sessionName(session) {
  if (!session) return '';
  const { name } = session;
  if (typeof name === 'string') return name;
  if (name && typeof name === 'object') return name.fullName || name.organization || '';
  return '';
}

// ---- theme -------------------------------------------------------------------------------------

function parseHex(color) {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(String(color || '').trim());
  if (!m) return null;
  let hex = m[1];
  if (hex.length === 3) hex = hex.split('').map((c) => c + c).join('');
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function luminance([r, g, b]) {
  const lin = (c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

const toHex = (rgb) => `#${rgb.map((c) => Math.round(c).toString(16).padStart(2, '0')).join('')}`;

/**
 * The operator's colour becomes --primary. Text on it (--on-primary) is white or black, whichever
 * contrasts more; --primary-ink (the colour used for links and text on light backgrounds) is
 * darkened until it reaches 4.5:1 on the page background, so AA holds for any configured colour.
 */
function applyTheme(color) {
  const rgb = parseHex(color);
  if (!rgb) return;
  const root = document.documentElement.style;
  const white = [255, 255, 255];
  const page = [244, 246, 250];
  root.setProperty('--primary', toHex(rgb));
  root.setProperty('--on-primary', contrast(rgb, white) >= contrast(rgb, [0, 0, 0]) ? '#ffffff' : '#000000');
  let ink = rgb;
  for (let i = 0; i < 20 && contrast(ink, page) < 4.6; i += 1) ink = ink.map((c) => c * 0.88);
  root.setProperty('--primary-ink', toHex(ink));
  root.setProperty('--primary-hover', toHex(rgb.map((c) => c * 0.86)));
  root.setProperty('--primary-soft', toHex(rgb.map((c) => c * 0.09 + 255 * 0.91)));
}

// ---- shell -------------------------------------------------------------------------------------

function renderShell(activeNav) {
  const signedIn = Boolean(state.session);
  document.body.classList.toggle('signed-in', signedIn);
  $('user-area').hidden = !signedIn;
  $('main-nav').hidden = !signedIn;
  $('user-name').textContent = sessionName(state.session);
  for (const link of $('main-nav').querySelectorAll('a[data-nav]')) {
    if (link.dataset.nav === activeNav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function loadingNode(title) {
  return h('div', { class: 'view' },
    h('h1', { tabindex: '-1' }, title),
    h('div', { class: 'loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', null, 'Loading…')));
}

function errorNode(title, err, retry) {
  const node = h('div', { class: 'view' }, h('h1', { tabindex: '-1' }, title));
  const box = h('div', { class: 'card error-card' });
  node.appendChild(box);
  showAlert(box, err instanceof ApiError ? err.message : 'Something went wrong. Please try again.');
  box.appendChild(h('p', null, h('button', { type: 'button', class: 'button secondary', onclick: retry }, 'Try again')));
  return node;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '');
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  return { path, params };
}

async function route() {
  const token = ++navToken;
  const { path, params } = parseHash();
  const def = ROUTES[path];
  if (!def) {
    go(state.session ? '#/profile' : '#/signin', { replace: true });
    return;
  }
  if (def.access === 'customer' && !state.session) {
    go('#/signin', { replace: true });
    return;
  }
  if (def.access !== 'customer' && state.session) {
    go('#/profile', { replace: true });
    return;
  }

  clearAlert();
  setStatus('');
  renderShell(def.nav || null);
  setTitle(def.title);
  const main = $('main');
  const viewEl = $('view');
  main.setAttribute('aria-busy', 'true');
  viewEl.replaceChildren(loadingNode(def.title));

  const ctx = {
    params,
    state,
    operatorName: operatorName(),
    isCurrent: () => token === navToken,
    go,
    setStatus,
    setSession,
    setTitle,
    unauthorized,
    focusHeading,
  };
  try {
    const node = await def.view(ctx);
    if (token !== navToken || !node) return;
    viewEl.replaceChildren(node);
  } catch (err) {
    if (token !== navToken) return;
    if (err instanceof ApiError && err.status === 401) {
      unauthorized();
      return;
    }
    if (!(err instanceof ApiError)) console.error(err);
    viewEl.replaceChildren(errorNode(def.title, err, () => route()));
  } finally {
    if (token === navToken) main.setAttribute('aria-busy', 'false');
  }
  if (token !== navToken) return;
  if (state.flash) {
    setStatus(...state.flash);
    state.flash = null;
  }
  focusHeading(viewEl);
}

async function signOut(event) {
  const button = event.currentTarget;
  if (button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  try {
    await api.logout();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      const view = $('view');
      showAlert(view, err.message || 'We could not sign you out. Please try again.', { before: view.firstChild });
      return;
    }
  } finally {
    button.removeAttribute('aria-disabled');
  }
  state.session = null;
  renderShell(null);
  go('#/signin', { flash: 'You have signed out.', tone: 'info' });
}

async function boot() {
  $('signout').addEventListener('click', signOut);
  $('skip-link').addEventListener('click', (event) => {
    event.preventDefault();
    focusHeading($('view'));
  });
  window.addEventListener('hashchange', () => route());
  // a click on the current page's nav link (e.g. "Profile" while editing) shows that page afresh
  $('main-nav').addEventListener('click', (event) => {
    const link = event.target.closest('a[href^="#/"]');
    if (link && link.getAttribute('href') === location.hash) {
      event.preventDefault();
      route();
    }
  });

  const [config, session] = await Promise.allSettled([api.config(), api.session()]);
  if (config.status === 'fulfilled' && config.value) {
    state.config = config.value;
    applyTheme(config.value.operator && config.value.operator.primaryColor);
    $('operator-name').textContent = operatorName();
  }
  if (session.status === 'fulfilled' && session.value) {
    state.session = session.value;
  } else if (session.status === 'rejected' && !(session.reason instanceof ApiError && session.reason.status === 401)) {
    // The server could not tell whether we are signed in: say so rather than showing the sign-in page.
    renderShell(null);
    setTitle('Unavailable');
    $('view').replaceChildren(errorNode('Self-care is unavailable', session.reason, () => location.reload()));
    $('main').setAttribute('aria-busy', 'false');
    return;
  }
  if (!ROUTES[parseHash().path]) {
    history.replaceState(null, '', state.session ? '#/profile' : '#/signin');
  }
  route();
}

boot();
