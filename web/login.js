// Sign-in page: POST /api/v1/login with a user name and password. The
// server returns the role and a CSRF token, and sets the HttpOnly session
// cookie itself.

import {ApiError, el, request, session, show} from './lib.js';

// "in N seconds" or "in N minutes" for a Retry-After of SECONDS, or
// "later" when the server sent none.
function waitText(seconds) {
  if (!seconds) return 'later';
  if (seconds < 90) return `in ${seconds} second${seconds === 1 ? '' : 's'}`;
  return `in ${Math.ceil(seconds / 60)} minutes`;
}

// Text for a failed sign-in ERR.
function loginErrorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 401) return 'Wrong user name or password.';
    if (err.status === 429) {
      return `Too many failed sign-ins from this address or for this user. Try again ${waitText(err.retryAfter)}.`;
    }
    if (err.status === 400) return `The server rejected the request: ${err.message}`;
  }
  return `Signing in failed: ${err.message}`;
}

// Show the sign-in form. NOTICE is an optional message above it (session
// expired, signed out). ONDONE runs after a successful sign-in.
export function renderLogin(token, notice, onDone) {
  const message = el('p', {id: 'login-message', class: 'form-message', role: 'alert'});
  const user = el('input', {id: 'login-user', name: 'user', type: 'text', autocomplete: 'username',
    required: true, autocapitalize: 'off', spellcheck: 'false'});
  const password = el('input', {id: 'login-password', name: 'password', type: 'password',
    autocomplete: 'current-password', required: true});
  const submit = el('button', {type: 'submit', text: 'Sign in'});
  const form = el('form', {class: 'login-form', 'aria-describedby': 'login-message'},
    el('div', {class: 'field'}, el('label', {for: 'login-user', text: 'User name'}), user),
    el('div', {class: 'field'}, el('label', {for: 'login-password', text: 'Password'}), password),
    submit, message);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.textContent = '';
    message.classList.remove('error');
    submit.disabled = true;
    try {
      const reply = await request('login', {method: 'POST', body: {user: user.value, password: password.value}});
      session.user = reply.user;
      session.role = reply.role;
      session.csrf = reply.csrf_token;
      session.auth = 'session';
      password.value = '';
      onDone();
    } catch (err) {
      submit.disabled = false;
      message.classList.add('error');
      message.textContent = loginErrorText(err);
      password.select();
      password.focus();
    }
  });

  show(token,
    el('section', {class: 'login'},
      el('h2', {text: 'Sign in'}),
      notice ? el('p', {class: 'state state-notice', role: 'status', text: notice}) : null,
      form,
      el('p', {class: 'muted', text: 'On first start, flowveil serve prints the admin password once; an admin adds more users with "flowveil user add".'})));
  user.focus();
}
