// Profile: the customer's details (RetrieveCustomerInformation) and the edit form (UpdateCustomerInformation).
import { api, ApiError } from './api.js';
import { h, field, checkboxField, showAlert, clearAlert, badge, stateTone, humanize, countryName, busy, setBusy, invalid }
  from './dom.js';

const LANGUAGES = [
  ['en', 'English'],
  ['fr', 'Français'],
  ['de', 'Deutsch'],
  ['es', 'Español'],
  ['it', 'Italiano'],
];
const ADDRESS_KEYS = ['street1', 'street2', 'postCode', 'city', 'stateOrProvince', 'country'];
const PREF_CHANNELS = [['email', 'By email'], ['sms', 'By SMS'], ['post', 'By post']];
const COUNTRY_SUGGESTIONS = ['GB', 'FR', 'DE', 'ES', 'IT', 'BE', 'NL', 'LU', 'CH', 'AT', 'PT', 'IE', 'MC', 'US'];

const str = (v) => (v === null || v === undefined ? '' : String(v));

function languageName(code) {
  const found = LANGUAGES.find(([c]) => c === code);
  return found ? found[1] : str(code) || 'Not set';
}

function isCorporate(p) {
  return str(p.segment).toLowerCase() === 'corporate' || Boolean(p.name && p.name.organization);
}

function fullName(p) {
  const n = p.name || {};
  return str(n.fullName) || [n.givenName, n.familyName].filter(Boolean).join(' ');
}

function row(label, value, testid) {
  return [h('dt', null, label), h('dd', testid ? { dataset: { testid } } : null, value)];
}

function notProvided() {
  return h('span', { class: 'muted' }, 'Not provided');
}

/** "amelia.smith@example.net" with a line-break opportunity after the @ */
function breakableEmail(email) {
  const at = email.indexOf('@');
  return at > 0 ? [email.slice(0, at + 1), h('wbr'), email.slice(at + 1)] : [email];
}

function addressLines(a) {
  if (!a) return [];
  const lines = [str(a.street1), str(a.street2), [str(a.postCode), str(a.city)].filter(Boolean).join(' '),
    str(a.stateOrProvince), a.country ? countryName(a.country) : ''];
  return lines.map((l) => l.trim()).filter(Boolean);
}

export async function profileView(ctx) {
  let profile = await api.customer();
  const root = h('div', { class: 'view view-profile' });

  function showDetails(focus) {
    clearAlert();
    root.replaceChildren(...details());
    ctx.setTitle('Profile');
    if (focus) ctx.focusHeading(root);
  }

  function showForm() {
    clearAlert();
    ctx.setStatus('');
    root.replaceChildren(...editForm());
    ctx.setTitle('Edit details');
    ctx.focusHeading(root);
  }

  // ---- read-only view ----

  function details() {
    const p = profile || {};
    const corporate = isCorporate(p);
    const editButton = h('button', { type: 'button', class: 'button', dataset: { testid: 'profile-edit' }, onclick: showForm },
      'Edit details');
    const head = h('div', { class: 'view-head' },
      h('div', null, h('h1', { tabindex: '-1' }, 'Your profile'),
        h('p', { class: 'muted' }, corporate ? 'Business account' : 'Personal account')),
      editButton);

    const identity = h('dl', { class: 'details' },
      row(corporate ? 'Contact name' : 'Name', fullName(p) || notProvided(), 'profile-name'),
      corporate && p.name && p.name.organization ? row('Organization', str(p.name.organization), 'profile-organization') : null,
      row('Account', badge(humanize(p.accountState) || 'Unknown', stateTone(p.accountState)), 'profile-state'));

    const emailValue = h('span', { class: 'with-badge' },
      p.email ? h('span', { class: 'break', dataset: { testid: 'profile-email' } }, ...breakableEmail(str(p.email)))
        : h('span', { class: 'muted', dataset: { testid: 'profile-email' } }, 'Not provided'),
      p.email ? (p.emailVerified ? badge('Verified', 'good') : badge('Not verified', 'warn')) : null);
    const address = addressLines(p.address);
    const contact = h('dl', { class: 'details' },
      row('Email', emailValue),
      row('Phone', p.phone ? str(p.phone) : notProvided(), 'profile-phone'),
      row('Postal address', address.length
        ? h('span', { class: 'address' }, address.map((line) => h('span', { class: 'line' }, line)))
        : notProvided(), 'profile-address'));

    const prefs = p.preferences || {};
    const preferences = h('dl', { class: 'details' },
      PREF_CHANNELS.map(([key, label]) => row(label, prefs[key] ? badge('Yes', 'good') : badge('No', 'neutral'))),
      row('Language', languageName(prefs.language), 'profile-language'));

    const products = Array.isArray(p.products) ? p.products : [];
    const productList = products.length
      ? h('ul', { class: 'products' }, products.map((prod) => h('li', { class: 'product', dataset: { testid: 'profile-product' } },
        h('div', null,
          h('p', { class: 'product-name' }, str(prod.name) || 'Product'),
          prod.msisdn ? h('p', { class: 'muted mono' }, str(prod.msisdn)) : null),
        badge(humanize(prod.status) || 'Unknown', stateTone(prod.status)))))
      : h('p', { class: 'muted' }, 'You have no products yet.');

    const contactCard = h('section', { class: 'card', 'aria-labelledby': 'pc-contact' },
      h('h2', { id: 'pc-contact' }, 'Contact details'), contact);
    if (p.pendingEmail) contactCard.appendChild(pendingEmailBox(p.pendingEmail));

    return [
      head,
      h('div', { class: 'masonry' },
        h('section', { class: 'card', 'aria-labelledby': 'pc-identity' }, h('h2', { id: 'pc-identity' }, 'Account holder'), identity),
        contactCard,
        h('section', { class: 'card', 'aria-labelledby': 'pc-prefs' },
          h('h2', { id: 'pc-prefs' }, 'Communication preferences'), preferences),
        h('section', { class: 'card', 'aria-labelledby': 'pc-products' },
          h('h2', { id: 'pc-products' }, 'Products and lines'), productList)),
    ];
  }

  function pendingEmailBox(pendingEmail) {
    const input = h('input', {
      type: 'text', name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '12',
      spellcheck: 'false', dataset: { testid: 'email-code' },
    });
    const button = h('button', { type: 'submit', class: 'button', dataset: { testid: 'email-verify' } }, 'Confirm email');
    const form = h('form', { class: 'form inline-form', novalidate: true },
      field('Verification code', input, { hint: 'Enter the code we sent to the new address.' }),
      h('div', { class: 'actions' }, button));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (busy(button)) return;
      const code = input.value.replace(/\s+/g, '');
      if (!code) {
        invalid(form, input, 'Enter the code we sent to your new email address.');
        return;
      }
      setBusy(button, true, 'Checking…');
      try {
        profile = await api.verifyEmail(code) || await api.customer();
        showDetails(true);
        ctx.setStatus('Your new email address is confirmed.');
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
    return h('div', { class: 'notice pending', dataset: { testid: 'profile-pending-email' } },
      h('p', null, 'Pending verification: ', h('strong', { class: 'break' }, str(pendingEmail))),
      form);
  }

  // ---- edit form ----

  function editForm() {
    const p = profile || {};
    const a = p.address || {};
    const prefs = p.preferences || {};
    const input = (attrs) => h('input', { type: 'text', ...attrs });

    const email = input({ type: 'email', name: 'email', autocomplete: 'email', value: str(p.email), spellcheck: 'false',
      dataset: { testid: 'edit-email' } });
    const phone = input({ type: 'tel', name: 'phone', autocomplete: 'tel', value: str(p.phone), dataset: { testid: 'edit-phone' } });
    const addr = {
      street1: input({ name: 'street1', autocomplete: 'address-line1', value: str(a.street1), dataset: { testid: 'edit-street1' } }),
      street2: input({ name: 'street2', autocomplete: 'address-line2', value: str(a.street2), dataset: { testid: 'edit-street2' } }),
      postCode: input({ name: 'postCode', autocomplete: 'postal-code', value: str(a.postCode), class: 'short',
        dataset: { testid: 'edit-postcode' } }),
      city: input({ name: 'city', autocomplete: 'address-level2', value: str(a.city), dataset: { testid: 'edit-city' } }),
      stateOrProvince: input({ name: 'stateOrProvince', autocomplete: 'address-level1', value: str(a.stateOrProvince),
        dataset: { testid: 'edit-state' } }),
      country: input({ name: 'country', autocomplete: 'country', value: str(a.country), maxlength: '2', class: 'tiny upper',
        autocapitalize: 'characters', spellcheck: 'false', list: 'country-codes', dataset: { testid: 'edit-country' } }),
    };
    const countryList = h('datalist', { id: 'country-codes' },
      COUNTRY_SUGGESTIONS.map((c) => h('option', { value: c }, countryName(c))));
    const pref = {};
    for (const [key] of PREF_CHANNELS) {
      pref[key] = h('input', { type: 'checkbox', name: `pref-${key}`, checked: Boolean(prefs[key]),
        dataset: { testid: `edit-pref-${key}` } });
    }
    const language = h('select', { name: 'language', value: str(prefs.language) || 'en', dataset: { testid: 'edit-language' } },
      LANGUAGES.map(([code, label]) => h('option', { value: code, lang: code }, label)));

    const save = h('button', { type: 'submit', class: 'button', dataset: { testid: 'edit-save' } }, 'Save changes');
    const cancel = h('button', { type: 'button', class: 'button ghost', dataset: { testid: 'edit-cancel' },
      onclick: () => showDetails(true) }, 'Cancel');

    const form = h('form', { class: 'form card edit-form', novalidate: true }, h('div', { class: 'form-columns' },
      h('fieldset', { class: 'fs-contact' }, h('legend', null, 'Contact details'),
        field('Email', email, { hint: p.pendingEmail
          ? `A change to ${p.pendingEmail} is waiting for confirmation.`
          : 'If you change it, we send a code to the new address to confirm it.' }),
        field('Phone', phone, { hint: 'international format, e.g. +33 6 00 00 01 01' })),
      h('fieldset', { class: 'fs-address' }, h('legend', null, 'Postal address'),
        field('Street address', addr.street1),
        field('Address line 2', addr.street2, { optional: true }),
        h('div', { class: 'field-row' },
          field('Postcode', addr.postCode),
          field('City', addr.city)),
        field('State or province', addr.stateOrProvince, { optional: true }),
        field('Country', addr.country, { hint: '2-letter code, e.g. GB, FR, DE' }),
        countryList),
      h('fieldset', { class: 'fs-prefs' }, h('legend', null, 'Communication preferences'),
        h('p', { class: 'hint' }, 'How may we contact you about offers and news?'),
        h('div', { class: 'checks' }, PREF_CHANNELS.map(([key, label]) => checkboxField(label, pref[key]))),
        field('Language', language))),
      h('div', { class: 'actions' }, save, cancel));

    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') showDetails(true);
    });

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (busy(save)) return;
      for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
      const changes = {};
      const emailValue = email.value.trim();
      if (emailValue !== str(p.email)) changes.email = emailValue || null;
      const phoneValue = phone.value.trim();
      if (phoneValue !== str(p.phone)) changes.phone = phoneValue || null;
      const newAddress = {};
      let addressChanged = false;
      for (const key of ADDRESS_KEYS) {
        let value = addr[key].value.trim();
        if (key === 'country') value = value.toUpperCase();
        newAddress[key] = value;
        if (value !== str(a[key])) addressChanged = true;
      }
      if (addressChanged) changes.address = newAddress;
      const newPrefs = {};
      for (const [key] of PREF_CHANNELS) {
        if (pref[key].checked !== Boolean(prefs[key])) newPrefs[key] = pref[key].checked;
      }
      if (language.value !== str(prefs.language || 'en')) newPrefs.language = language.value;
      if (Object.keys(newPrefs).length) changes.preferences = newPrefs;

      if (!Object.keys(changes).length) {
        showDetails(true);
        ctx.setStatus('Nothing changed.');
        return;
      }
      setBusy(save, true, 'Saving…');
      form.setAttribute('aria-busy', 'true');
      try {
        profile = await api.updateCustomer(changes) || await api.customer();
        showDetails(true);
        ctx.setStatus('Your details were saved.');
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          ctx.unauthorized();
          return;
        }
        const target = fieldForMessage(err.message, { email, phone, language, ...addr });
        const alert = showAlert(form, err.message, { before: form.firstChild });
        if (target) {
          target.setAttribute('aria-invalid', 'true');
          target.setAttribute('aria-errormessage', alert.id = 'edit-error');
        }
        alert.focus();
      } finally {
        form.removeAttribute('aria-busy');
        setBusy(save, false);
      }
    });

    return [
      h('div', { class: 'view-head' }, h('h1', { tabindex: '-1' }, 'Edit your details')),
      form,
    ];
  }

  showDetails(false);
  return root;
}

/** The server's message names the field ("address.postCode: …"): point at that input. */
function fieldForMessage(message, inputs) {
  const text = String(message || '');
  const order = ['postCode', 'stateOrProvince', 'street1', 'street2', 'country', 'city', 'language', 'phone', 'email'];
  for (const key of order) {
    if (new RegExp(`\\b${key}\\b`, 'i').test(text)) return inputs[key];
  }
  return null;
}
