// Sign-in and first-sign-in account linking views.
import { api, ApiError } from './api.js';
import { h, field, showAlert, clearAlert, busy, setBusy, invalid } from './dom.js';

const SIGNIN_ERRORS = {
  access_denied: 'Sign-in was cancelled or refused at the identity provider.',
  cancelled: 'Sign-in was cancelled.',
  login_required: 'Sign-in was cancelled.',
  invalid_state: 'Your sign-in attempt expired or was started in another window. Please try again.',
  state_mismatch: 'Your sign-in attempt expired or was started in another window. Please try again.',
  expired: 'Your sign-in attempt expired. Please try again.',
  session_expired: 'Your session has ended. Please sign in again.',
  invalid_request: 'The sign-in request was not valid. Please try again.',
  unknown_provider: 'This sign-in method is not available.',
  provider_error: 'The identity provider reported an error. Please try again later.',
  server_error: 'The identity provider reported an error. Please try again later.',
  temporarily_unavailable: 'The identity provider is temporarily unavailable. Please try again later.',
  token_error: 'We could not complete sign-in with the identity provider. Please try again.',
  email_not_verified: 'Your email address is not verified at the identity provider. Verify it there and try again.',
  account_disabled: 'This account cannot sign in. Please contact customer care.',
  account_suspended: 'This account cannot sign in. Please contact customer care.',
  no_pending_link: 'Your sign-in could not be completed or has expired. Please sign in again.',
  link_expired: 'Your sign-in could not be completed or has expired. Please sign in again.',
  no_sign_in: 'Your sign-in attempt expired or was started in another window. Please try again.',
  no_code: 'The identity provider did not complete the sign-in. Please try again.',
  token_refused: 'We could not complete sign-in with the identity provider. Please try again.',
  invalid_id_token: 'We could not verify your identity with the provider. Please try again.',
  no_id_token: 'We could not verify your identity with the provider. Please try again.',
  upstream_unavailable: 'The identity provider is temporarily unavailable. Please try again later.',
  too_many_requests: 'Too many attempts. Please wait a minute and try again.',
};

export function signinErrorMessage(code) {
  const key = String(code).trim().toLowerCase();
  if (SIGNIN_ERRORS[key]) return SIGNIN_ERRORS[key];
  const shown = String(code).replace(/[^\w.-]/g, '').slice(0, 60);
  return `Sign-in did not complete${shown ? ` (${shown})` : ''}. Please try again.`;
}

export async function signinView(ctx) {
  let { config } = ctx.state;
  if (!config) {
    config = await api.config();
    ctx.state.config = config;
  }
  const name = ctx.operatorName;
  const providers = Array.isArray(config && config.providers) ? config.providers : [];

  const card = h('section', { class: 'card auth-card', 'aria-labelledby': 'signin-title' },
    h('img', { class: 'auth-logo', src: '/selfcare/assets/logo.svg', alt: '', width: '56', height: '56' }),
    h('p', { class: 'eyebrow' }, name),
    h('h1', { id: 'signin-title', tabindex: '-1' }, 'Sign in to your account'),
    h('p', { class: 'lead' }, 'See your balance and allowances, download your usage and keep your details up to date.'));

  const error = ctx.params.get('error');
  if (error) showAlert(card, signinErrorMessage(error));

  if (providers.length) {
    card.appendChild(h('div', { class: 'providers' }, providers
      .filter((p) => p && p.id)
      .map((p) => h('a', {
        class: 'button provider',
        href: api.loginUrl(String(p.id)),
        dataset: { testid: `signin-provider-${p.id}` },
      }, `Sign in with ${p.label || p.id}`))));
    card.appendChild(h('p', { class: 'fine' },
      'First time here? Sign in with any of these; we will then ask for your mobile number to find your account.'));
  } else {
    card.appendChild(h('p', { class: 'notice' }, 'Online sign-in is not available at the moment. Please try again later.'));
  }
  return h('div', { class: 'view auth-view' }, card);
}

function normalizeMsisdn(value) {
  return value.trim().replace(/[\s().\-/]/g, '');
}

export async function linkView(ctx) {
  let pending;
  try {
    pending = await api.pendingLink();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      ctx.go('#/signin?error=no_pending_link', { replace: true });
      return null;
    }
    throw err;
  }

  const step = h('div', { class: 'link-step' });
  const intro = [];
  if (pending && (pending.provider || pending.email)) {
    const who = [];
    who.push('You are signed in');
    if (pending.provider) who.push(` with ${pending.providerLabel || pending.provider}`);
    if (pending.email) who.push(' as ', h('strong', null, String(pending.email)));
    who.push('.');
    intro.push(h('p', null, who));
  }
  intro.push(h('p', null,
    'We could not match your account automatically. Enter your mobile number to receive a one-time code.'));

  const card = h('section', { class: 'card auth-card', 'aria-labelledby': 'link-title' },
    h('img', { class: 'auth-logo', src: '/selfcare/assets/logo.svg', alt: '', width: '56', height: '56' }),
    h('p', { class: 'eyebrow' }, ctx.operatorName),
    h('h1', { id: 'link-title', tabindex: '-1' }, 'Link your account'),
    intro,
    step,
    h('p', { class: 'fine' }, h('a', { href: '#/signin' }, 'Cancel and go back to sign-in')));

  let lastNumber = '';

  function numberStep(focus) {
    const input = h('input', {
      type: 'tel', name: 'msisdn', autocomplete: 'tel', required: true, value: lastNumber,
      dataset: { testid: 'link-msisdn' },
    });
    const button = h('button', { type: 'submit', class: 'button', dataset: { testid: 'link-send' } }, 'Send code');
    const actions = h('div', { class: 'actions' }, button);
    const form = h('form', { class: 'form', novalidate: true },
      field('Mobile number', input, { hint: 'international format, e.g. +33 6 00 00 01 01' }),
      actions);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (busy(button)) return;
      const msisdn = normalizeMsisdn(input.value);
      if (!msisdn) {
        invalid(form, input, 'Enter your mobile number.');
        return;
      }
      setBusy(button, true, 'Sending…');
      try {
        const answer = await api.sendLinkCode(msisdn);
        lastNumber = input.value.trim();
        clearAlert();
        ctx.setStatus((answer && answer.message) || 'If this number is one of our lines, a code is on its way by SMS.');
        codeStep(answer && answer.expiresInSeconds);
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          ctx.unauthorized();
          return;
        }
        invalid(form, input, err.message);
      } finally {
        setBusy(button, false);
      }
    });
    step.replaceChildren(form);
    if (focus) input.focus();
  }

  function codeStep(expiresInSeconds) {
    const input = h('input', {
      type: 'text', name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', required: true,
      maxlength: '12', spellcheck: 'false', dataset: { testid: 'link-code' },
    });
    const minutes = Math.round(Number(expiresInSeconds) / 60);
    const hint = minutes >= 1
      ? `Sent by SMS to ${lastNumber}. It is valid for ${minutes} minute${minutes === 1 ? '' : 's'}.`
      : `Sent by SMS to ${lastNumber}.`;
    const verify = h('button', { type: 'submit', class: 'button', dataset: { testid: 'link-verify' } }, 'Verify and continue');
    const change = h('button', { type: 'button', class: 'button ghost', onclick: () => { clearAlert(); numberStep(true); } },
      'Use a different number');
    const form = h('form', { class: 'form', novalidate: true },
      field('One-time code', input, { hint }),
      h('div', { class: 'actions' }, verify, change));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (busy(verify)) return;
      const code = input.value.replace(/\s+/g, '');
      if (!code) {
        invalid(form, input, 'Enter the code we sent you by SMS.');
        return;
      }
      setBusy(verify, true, 'Checking…');
      try {
        let session = await api.verifyLinkCode(code);
        if (!session || !session.customerId) session = await api.session();
        clearAlert();
        ctx.setSession(session);
        ctx.go('#/profile', { flash: 'Your account is now linked. Welcome!' });
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          ctx.unauthorized();
          return;
        }
        invalid(form, input, err.message);
        input.select();
      } finally {
        setBusy(verify, false);
      }
    });
    step.replaceChildren(form);
    input.focus();
  }

  numberStep(false);
  return h('div', { class: 'view auth-view' }, card);
}
