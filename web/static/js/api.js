// Same-origin API client. Every request goes to the node that served the
// page (relative URLs only), with the session's bearer token.

const TOKEN = 'warden-token';

// ApiError carries the API's error body ({"error": {code, message, ...}})
// so pages can show the API's own words.
export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail || {};
  }
  // text is what the user reads: status, code and the API's message.
  get text() {
    if (!this.status) return this.message;
    const where = this.detail.leader ? ` (leader: ${this.detail.leader})` : '';
    return `${this.status} ${this.code}: ${this.message}${where}`;
  }
}

// The token lives in sessionStorage only: it dies with the tab and is
// never written anywhere a later visitor of the machine could read it.
export const token = {
  get: () => sessionStorage.getItem(TOKEN) || '',
  set: (t) => sessionStorage.setItem(TOKEN, t),
  clear: () => sessionStorage.removeItem(TOKEN),
};

// request calls the API and returns the decoded JSON body, or throws an
// ApiError. path is relative to /api/v1 unless it starts with '/'.
export async function request(method, path, body, tok = token.get()) {
  const url = path.startsWith('/') ? path : '/api/v1/' + path;
  const headers = { Accept: 'application/json' };
  if (tok) headers.Authorization = 'Bearer ' + tok;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit',
    });
  } catch (e) {
    throw new ApiError(0, 'network_error', 'cannot reach this Warden node: ' + e.message);
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(res.status, err.code || 'http_' + res.status, err.message || text.trim() || res.statusText, err);
  }
  return data;
}

export const get = (path) => request('GET', path);

// keyPath is the /instances/{host}/{port} part of a URL for a key.
export function keyPath(k) {
  return `instances/${encodeURIComponent(k.host)}/${k.port}`;
}
