// The HTTP API from the browser: JSON in and out, the API key asked for once (kept in sessionStorage), errors as
// ApiError with the fields they name, images fetched with the key and shown through object URLs.

const KEY_STORAGE = 'wuerstchen.apiKey';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `The server answered ${status}.`);
    this.status = status;
    this.title = problem?.title || '';
    this.detail = problem?.detail || '';
    this.fields = problem?.errors || {};
  }
}

export const apiKey = {
  get: () => sessionStorage.getItem(KEY_STORAGE),
  set: (value) => sessionStorage.setItem(KEY_STORAGE, value),
  clear: () => sessionStorage.removeItem(KEY_STORAGE),
};

let askingForKey = null;

/** Shows the key dialog once, however many calls were refused at the same time. */
function askForKey(wrongKey) {
  if (askingForKey) return askingForKey;
  askingForKey = new Promise((resolve) => {
    const dialog = document.getElementById('key-dialog');
    const input = document.getElementById('key-input');
    document.getElementById('key-error').textContent = wrongKey ? 'The server refused this key.' : '';
    input.value = '';
    dialog.addEventListener('close', () => {
      const value = input.value.trim();
      if (value) apiKey.set(value);
      askingForKey = null;
      document.getElementById('key-button').hidden = false;
      resolve(Boolean(value));
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
  return askingForKey;
}

export function changeKey() {
  apiKey.clear();
  return askForKey(false);
}

/** An API URL as this page can fetch it: absolute links the server handed out become paths of this origin. */
export function localUrl(url) {
  if (/^https?:/.test(url)) {
    const parsed = new URL(url);
    return parsed.pathname + parsed.search;
  }
  return url.startsWith('/') ? url : `/api/${url}`;
}

async function send(method, url, body, headers) {
  const h = { Accept: 'application/json, application/problem+json', ...headers };
  const key = apiKey.get();
  if (key) h['x-functions-key'] = key;
  let payload;
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  return fetch(localUrl(url), { method, headers: h, body: payload });
}

/** Fetches with the key, asking for one when the server says 401; throws ApiError for any other failure. */
export async function request(method, url, body, headers = {}) {
  let response = await send(method, url, body, headers);
  for (let attempt = 0; response.status === 401 && attempt < 3; attempt++) {
    if (!(await askForKey(Boolean(apiKey.get())))) break;
    response = await send(method, url, body, headers);
  }
  if (!response.ok) {
    let problem = null;
    try { problem = await response.json(); } catch { /* not JSON: the status says it */ }
    throw new ApiError(response.status, problem);
  }
  return response;
}

export async function getJson(url) { return (await request('GET', url)).json(); }
export async function postJson(url, body, headers) { return (await request('POST', url, body, headers)).json(); }
export async function del(url) { return (await request('DELETE', url)).json().catch(() => ({})); }

const objectUrls = new Map();

/** An image (or any file) of the API as an object URL, fetched once with the key. */
export async function blobUrl(url) {
  const local = localUrl(url);
  if (!objectUrls.has(local)) {
    objectUrls.set(local, request('GET', local).then((r) => r.blob()).then((b) => URL.createObjectURL(b))
      .catch((e) => { objectUrls.delete(local); throw e; }));
  }
  return objectUrls.get(local);
}

/** Saves a file of the API under a name (a link with the key cannot be followed directly). */
export async function download(url, fileName) {
  const href = await blobUrl(url);
  const a = document.createElement('a');
  a.href = href;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
}
