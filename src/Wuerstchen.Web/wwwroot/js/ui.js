// Small DOM helpers shared by the pages: element building, field errors next to their fields, formatting.
import { ApiError, blobUrl } from './api.js';

/** h('div', {class: 'x', onclick: f}, child, 'text') */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'text') element.textContent = value;
    else if (name === 'html') throw new Error('no raw HTML');
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** A labelled field: label, control, hint and an error line the control is described by. */
export function field(label, control, { hint, api } = {}) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  if (api) control.dataset.field = api;
  const error = h('p', { class: 'field-error', id: `${id}-error` });
  const described = [];
  let hintElement = null;
  if (hint) {
    hintElement = h('p', { class: 'hint', id: `${id}-hint` }, hint);
    described.push(hintElement.id);
  }
  described.push(error.id);
  control.setAttribute('aria-describedby', described.join(' '));
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintElement, error);
}

export const input = (attributes) => h('input', { type: 'text', ...attributes });
export const number = (attributes) => h('input', { type: 'number', inputmode: 'decimal', ...attributes });

export function select(options, attributes = {}) {
  return h('select', attributes, options.map((o) => {
    const [value, label] = Array.isArray(o) ? o : [o, o];
    return h('option', { value }, label);
  }));
}

/** Clears every field error and the form's alert. */
export function clearErrors(form) {
  for (const control of form.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
  for (const error of form.querySelectorAll('.field-error')) error.textContent = '';
  const alert = form.querySelector('.alert');
  if (alert) alert.textContent = '';
}

/**
 * Shows an API error: each field error next to the control whose data-field names it (the first such control gets
 * the focus), anything else (409, 404, a field no control shows) in the form's alert, in words, never as JSON.
 */
export function showError(form, error, aliases = {}) {
  clearErrors(form);
  const alert = form.querySelector('.alert');
  const rest = [];
  let first = null;
  if (error instanceof ApiError && Object.keys(error.fields).length > 0) {
    for (const [name, messages] of Object.entries(error.fields)) {
      const key = aliases[name] || name;
      const control = form.querySelector(`[data-field="${CSS.escape(key)}"]`) || form.querySelector(`[data-field="${CSS.escape(key.split('.').pop())}"]`);
      const text = [].concat(messages).join(' ');
      if (control) {
        control.setAttribute('aria-invalid', 'true');
        document.getElementById(`${control.id}-error`).textContent = text;
        first ||= control;
      } else {
        rest.push(`${name}: ${text}`);
      }
    }
  } else if (error instanceof ApiError) {
    rest.push(error.status === 409 ? `Conflict: ${error.detail || error.message}` : error.status === 404 ? `Not found: ${error.detail || error.message}` : error.message);
  } else {
    rest.push(`The request did not reach the server: ${error.message}`);
  }
  if (alert) alert.textContent = rest.join(' ');
  (first || alert)?.focus?.();
  if (!first && alert) alert.setAttribute('tabindex', '-1'), alert.focus();
}

export function alertBox() { return h('div', { class: 'alert', role: 'alert' }); }

/** An <img> whose bytes are fetched with the API key. */
export function apiImage(url, alt, attributes = {}) {
  const img = h('img', { alt, loading: 'lazy', decoding: 'async', ...attributes });
  blobUrl(url).then((src) => { img.src = src; }).catch(() => { img.alt = `${alt} (could not be loaded)`; });
  return img;
}

export function formatBytes(bytes) {
  if (!bytes) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleString();
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function recipeList(entries) {
  return h('dl', { class: 'recipe' }, entries.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]));
}

/** Copies text, falling back to a selected text area where the clipboard API is not allowed (plain http). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h('textarea', { 'aria-hidden': 'true', style: 'position:fixed;left:-9999px' });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}

/** Runs f every interval ms until it returns true or the page changes; returns a stop function. */
export function poll(f, interval = 700) {
  let stopped = false, timer = 0;
  const run = async () => {
    if (stopped) return;
    let done = false;
    try { done = await f(); } catch (e) { console.warn(e); }
    if (!done && !stopped) timer = setTimeout(run, interval);
  };
  run();
  const stop = () => { stopped = true; clearTimeout(timer); };
  window.addEventListener('hashchange', stop, { once: true });
  return stop;
}

export const sizes = Array.from({ length: 16 }, (_, i) => (i + 1) * 128);
export const randomSeed = () => Math.floor(Math.random() * 2 ** 32);

/** Reads the settings fields shared by Generate and Bulk into a request body (blank fields are left out). */
export function readSettings(form) {
  const v = (name) => form.elements[name]?.value.trim();
  const num = (name) => (v(name) === '' || v(name) === undefined ? undefined : Number(v(name)));
  const body = {
    width: num('width'), height: num('height'), images: num('images'), seed: num('seed'),
    priorSteps: num('priorSteps'), priorGuidance: num('priorGuidance'), decoderSteps: num('decoderSteps'),
    priorModel: v('priorModel') || undefined, decoderModel: v('decoderModel') || undefined,
  };
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
  return body;
}
