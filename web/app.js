// flowveil dashboard: a hash-routed single page over the JSON API.
// This module contains the session (sign-in, sign-out, expiry), the
// navigation filtered by role, and the router. The pages live in their
// own modules; lib.js lists the rules they all keep.

import {renderAlerts} from './alerts.js';
import {renderCapture} from './capture.js';
import {renderAudit, renderCompliance, renderRetention} from './compliance.js';
import {renderHost} from './host.js';
import {
  CLASS_LABELS, ApiError, api, currentToken, el, emptyState, errorState, parseHash, request, session,
  setUnauthorizedHandler, show, view,
} from './lib.js';
import {renderLogin} from './login.js';
import {renderOverview} from './overview.js';
import {renderRecords} from './records.js';

const ALL = ['analyst', 'compliance', 'admin'];
const DATA = ['analyst', 'admin'];
const COMPLIANCE = ['compliance', 'admin'];

// Pages: title, the roles that may open them (the server's permissions
// for the routes behind them) and the render function.
const PAGES = {
  overview: {title: 'Overview', roles: ALL, render: (t, r) => renderOverview(t, r.query)},
  alerts: {title: 'Alerts', roles: DATA, render: (t, r) => renderAlerts(t, r.query)},
  host: {title: 'Host timeline', roles: DATA, nav: 'flows', render: (t, r) => renderHost(t, r.parts[0], r.query)},
  capture: {title: 'Capture', roles: ALL, render: (t) => renderCapture(t)},
  retention: {title: 'Retention', roles: ALL, render: (t) => renderRetention(t)},
  compliance: {title: 'Compliance', roles: COMPLIANCE, render: (t) => renderCompliance(t)},
  audit: {title: 'Audit', roles: COMPLIANCE, render: (t) => renderAudit(t)},
};
for (const cls of ['flows', 'dns', 'tls', 'http', 'dhcp', 'ssh', 'aggregates']) {
  PAGES[cls] = {title: CLASS_LABELS[cls], roles: DATA, render: (t, r) => renderRecords(t, cls, r.query)};
}

// The hash to open after signing in: the page that needed the sign-in.
let afterLogin = '#/overview';

// Notice of the sign-in form, kept until the next sign-in. It is set when
// a session ends, so a page opened after the form appeared still shows it.
let pendingNotice = null;

// True when the signed-in role may open PAGE. With a server without
// authentication (GET /me returns 404) the role is null, so every page
// is shown and the server decides.
function allowed(page) {
  return session.role === null || page.roles.includes(session.role);
}

// Show the nav entries the role may open and the signed-in user.
function updateChrome() {
  const signedIn = session.user !== null;
  const nav = document.querySelector('.site-header nav');
  nav.hidden = !signedIn && session.auth !== 'none';
  for (const link of document.querySelectorAll('.nav a')) {
    const page = PAGES[link.dataset.route];
    link.parentElement.hidden = !page || !allowed(page);
  }
  const box = document.getElementById('session');
  box.hidden = !signedIn;
  document.getElementById('session-user').textContent = signedIn ? `${session.user} (${session.role})` : '';
}

function clearSession() {
  session.user = null;
  session.role = null;
  session.csrf = null;
  session.auth = null;
}

function showLogin(notice) {
  updateChrome();
  document.title = 'Sign in · flowveil';
  markCurrent('');
  if (notice !== null) pendingNotice = notice;
  renderLogin(currentToken(), pendingNotice, () => {
    pendingNotice = null;
    updateChrome();
    const target = afterLogin;
    afterLogin = '#/overview';
    if (location.hash === target) route();
    else location.hash = target;
  });
}

// A 401 from any API call: the session expired or was revoked, or
// no user is signed in yet. Several requests of one page may fail at
// once; the form is shown only once.
setUnauthorizedHandler(() => {
  const wasSignedIn = session.user !== null;
  if (!wasSignedIn && view().querySelector('.login')) return;
  if (!location.hash.startsWith('#/login')) afterLogin = location.hash || '#/overview';
  clearSession();
  showLogin(wasSignedIn ? 'Your session has ended; sign in again.' : null);
});

async function signOut(button) {
  button.disabled = true;
  try {
    await request('logout', {method: 'POST'});
  } catch (err) {
    // A 401 means the session was already gone; anything else is shown.
    if (!(err instanceof ApiError && err.status === 401)) {
      button.disabled = false;
      show(currentToken(), el('h2', {text: 'Sign out'}), errorState(err, () => signOut(button)));
      return;
    }
  }
  button.disabled = false;
  clearSession();
  afterLogin = '#/overview';
  history.replaceState(null, '', '#/login');
  showLogin('You are signed out.');
}

function markCurrent(name) {
  const current = PAGES[name] ? PAGES[name].nav || name : '';
  for (const link of document.querySelectorAll('.nav a')) {
    if (link.dataset.route === current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function route() {
  const {name: rawName, parts, params} = parseHash();
  const name = rawName || 'overview';
  if (name === 'login' || (session.user === null && session.auth !== 'none')) {
    if (name !== 'login') afterLogin = location.hash || '#/overview';
    if (session.user !== null) {
      location.hash = '#/overview';
      return;
    }
    showLogin(null);
    return;
  }
  const token = currentToken();
  const page = PAGES[name];
  markCurrent(name);
  if (!page) {
    document.title = 'Not found · flowveil';
    show(token, el('h2', {text: 'Not found'}), emptyState('There is no such page.'),
      el('p', {}, el('a', {href: '#/overview', text: 'Go to the overview'})));
    return;
  }
  document.title = `${page.title} · flowveil`;
  if (!allowed(page)) {
    show(token, el('h2', {text: page.title}),
      el('div', {class: 'state state-forbidden', role: 'alert'},
        el('p', {text: `Access denied: your role (${session.role}) may not open the ${page.title} page. It needs the ${page.roles.filter((r) => r !== 'admin').join(' or ')} role; ask an administrator if you need it.`})));
    return;
  }
  page.render(token, {parts, query: Object.fromEntries(params.entries())});
}

// Ask the server who is signed in. 401: show the sign-in form. 404: a
// server without authentication; every page is shown.
async function start() {
  document.getElementById('logout').addEventListener('click', (event) => signOut(event.currentTarget));
  try {
    const me = await api('me');
    session.user = me.user;
    session.role = me.role;
    session.csrf = me.csrf_token || null;
    session.auth = me.auth || 'session';
  } catch (err) {
    // The unauthorized handler has shown the sign-in form already.
    if (err instanceof ApiError && err.status === 401) return;
    if (err instanceof ApiError && err.status === 404) {
      session.auth = 'none';
    } else {
      show(currentToken(), el('h2', {text: 'flowveil'}), errorState(err, () => location.reload()));
      return;
    }
  }
  updateChrome();
  route();
}

// After a navigation the focus moves to the new content, so keyboard and
// screen reader users start there; the sign-in form keeps its own focus.
window.addEventListener('hashchange', () => {
  route();
  if (!view().querySelector('.login')) view().focus({preventScroll: true});
});
start();
