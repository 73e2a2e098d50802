// Who the user is. The UI shows an action only to a role the API would
// allow it for; the API still checks every request (this is convenience,
// not security).
import { request, token, ApiError } from './api.js';

const LEVEL = { none: 0, viewer: 1, operator: 2, admin: 3 };

export const session = {
  role: 'none', // none, viewer, operator or admin
  name: '',
  authOff: false, // the API accepts requests without a token (loopback, no tokens configured)
  can(role) { return LEVEL[this.role] >= LEVEL[role]; },
};

// signIn checks tok against the API and learns its role; it throws the
// ApiError (401) if the token is not accepted.
export async function signIn(tok) {
  await request('GET', 'coordinators', undefined, tok);
  token.set(tok);
  await learnRole(tok);
}

// restore resumes a session: true if the API accepts us (with the stored
// token, or with none when auth is off), false if sign-in is needed.
export async function restore() {
  const tok = token.get();
  try {
    await request('GET', 'coordinators', undefined, tok);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      token.clear();
      session.role = 'none';
      return false;
    }
    throw e;
  }
  await learnRole(tok);
  return true;
}

export function signOut() {
  token.clear();
  session.role = 'none';
  session.name = '';
}

// learnRole asks the API who we are (GET /api/v1/whoami): the token's
// name and role, and whether authentication is on at all.
async function learnRole(tok) {
  const me = await request('GET', 'whoami', undefined, tok);
  if (!me || LEVEL[me.role] === undefined) throw new Error(`unexpected whoami answer: ${JSON.stringify(me)}`);
  session.role = me.role;
  session.name = me.name || '';
  session.authOff = me.auth === false;
}

// relearn asks again after the API refused an action with 403 (the token's
// role may have changed in the server's config), so buttons it can no
// longer use disappear.
export async function relearn() {
  await learnRole(token.get());
}
