// The serving layer's JSON API. When the server answers 401 the console asks for a bearer token
// once (one dialog however many requests were waiting), keeps it in localStorage and retries.
import { byId } from './dom.js';

const TOKEN_KEY = 'lambda.console.token';

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

let tokenPrompt; // the open dialog's promise, shared by every request that got a 401

export async function getJson(path) {
  return request(path, { method: 'GET' });
}

export async function runSql(sql) {
  return request('/v1/query', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql }) });
}

async function request(path, init) {
  for (;;) {
    const sentToken = localStorage.getItem(TOKEN_KEY);
    const headers = { accept: 'application/json', ...init.headers };
    if (sentToken) headers.authorization = `Bearer ${sentToken}`;
    const response = await fetch(path, { ...init, headers });
    if (response.status !== 401) return parse(response);
    // Another request may have stored a new token while this one was in flight.
    if (localStorage.getItem(TOKEN_KEY) === sentToken) await askForToken(sentToken ? 'That token was not accepted.' : undefined);
  }
}

async function parse(response) {
  const body = await response.json().catch(() => null);
  if (response.ok) return body;
  throw new ApiError(body?.error ?? `${response.status} ${response.statusText}`, response.status);
}

function askForToken(reason) {
  tokenPrompt ??= new Promise((resolve) => {
    const dialog = byId('token-dialog');
    const input = byId('token-input');
    byId('token-reason').textContent = reason ?? 'This server needs an access token.';
    input.value = '';
    dialog.addEventListener('close', () => {
      const token = input.value.trim();
      if (token) localStorage.setItem(TOKEN_KEY, token);
      tokenPrompt = undefined;
      resolve();
    }, { once: true });
    dialog.showModal();
  });
  return tokenPrompt;
}
