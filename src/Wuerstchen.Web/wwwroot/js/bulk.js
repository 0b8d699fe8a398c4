// Bulk: prompts pasted or read from a text/JSONL file, shared settings, then batches as they complete, the results,
// the manifest and a zip of the images.
import { getJson, postJson, download } from './api.js';
import { h, field, input, alertBox, showError, clearErrors, apiImage, poll, readSettings, formatTime } from './ui.js';
import { settingsFields, fillModelSelects } from './settings.js';

const RECENT = 'wuerstchen.bulkJobs';
const recentJobs = () => JSON.parse(localStorage.getItem(RECENT) || '[]');

/** One prompt per non-blank line; a .jsonl file's lines are JSON (a string or {prompt, negativePrompt, seed, width, height}). */
export function parsePrompts(text, jsonl) {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (!jsonl) return { prompts: lines };
  const prompts = [];
  for (const [i, line] of lines.entries()) {
    try { prompts.push(JSON.parse(line)); } catch { return { error: `Line ${i + 1} is not JSON.` }; }
  }
  return { prompts };
}

export async function bulkPage(main) {
  const file = input({ type: 'file', name: 'file', accept: '.txt,.jsonl,text/plain,application/x-ndjson' });
  const prompts = h('textarea', { name: 'prompts', rows: 6, placeholder: 'one prompt per line' });
  const form = h('form', { class: 'panel', novalidate: true, 'aria-labelledby': 'bulk-title' },
    h('h1', { id: 'bulk-title' }, 'Bulk generation'),
    alertBox(),
    field('Prompts', prompts, { api: 'prompts', hint: 'One per line, or JSON lines ({"prompt": …, "seed": …}).' }),
    field('…or a file', file, { hint: 'A .txt file (one prompt per line) or .jsonl file; it fills the box above.' }),
    field('Job id', input({ name: 'jobId', placeholder: 'made for you', pattern: '[a-z0-9][a-z0-9-]*' }), { api: 'jobId', hint: 'Lowercase letters, digits, hyphens.' }),
    settingsFields('settings.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Start bulk job')));
  form.elements.width.value = '1024';
  form.elements.height.value = '1024';
  const jobs = h('ul', { class: 'jobs' }, recentJobs().map((j) => h('li', {}, h('a', { href: `#/bulk/${j.id}` }, j.id), ` · ${j.count} prompts · ${formatTime(j.at)}`)));
  main.append(h('div', { class: 'columns' }, form, h('section', { class: 'panel', 'aria-labelledby': 'jobs-title' },
    h('h2', { id: 'jobs-title' }, 'Jobs started from this browser'), jobs.children.length ? jobs : h('p', { class: 'muted' }, 'None yet.'))));
  await fillModelSelects(form);

  file.addEventListener('change', async () => {
    const chosen = file.files[0];
    if (!chosen) return;
    const text = await chosen.text();
    const jsonl = chosen.name.toLowerCase().endsWith('.jsonl');
    prompts.value = jsonl ? text.trim() : text.split(/\r?\n/).filter((l) => l.trim()).join('\n');
    prompts.dataset.jsonl = jsonl ? 'true' : '';
  });
  prompts.addEventListener('input', () => { prompts.dataset.jsonl = /^\s*[{"]/.test(prompts.value) ? 'true' : ''; });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const parsed = parsePrompts(prompts.value, prompts.dataset.jsonl === 'true');
    if (parsed.error || parsed.prompts.length === 0) {
      prompts.setAttribute('aria-invalid', 'true');
      document.getElementById(`${prompts.id}-error`).textContent = parsed.error || 'Give at least one prompt.';
      prompts.focus();
      return;
    }
    const body = { prompts: parsed.prompts, settings: readSettings(form) };
    if (form.elements.jobId.value.trim()) body.jobId = form.elements.jobId.value.trim();
    try {
      const started = await postJson('bulk', body);
      localStorage.setItem(RECENT, JSON.stringify([{ id: started.id, count: parsed.prompts.length, at: new Date().toISOString() }, ...recentJobs()].slice(0, 20)));
      location.hash = `#/bulk/${started.id}`;
    } catch (e) {
      showError(form, e);
    }
  });
}

export async function bulkJobPage(main, jobId) {
  const live = h('p', { role: 'status', 'aria-live': 'polite' }, 'Loading…');
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Batches completed' });
  const batches = h('ul', { class: 'jobs', 'aria-label': 'Batches' });
  const downloads = h('div', { class: 'actions' });
  const results = h('div', { class: 'results', 'aria-label': 'Results' });
  const panel = h('section', { class: 'panel', 'aria-labelledby': 'job-title' },
    h('h1', { id: 'job-title' }, 'Bulk job ', h('code', {}, jobId)), alertBox(), live, bar, batches, downloads);
  main.append(h('p', {}, h('a', { href: '#/bulk' }, '← Bulk')), panel, h('h2', {}, 'Results'), results);
  const batchStatus = new Map();

  poll(async () => {
    let job;
    try {
      job = await getJson(`bulk/${encodeURIComponent(jobId)}`);
    } catch (e) {
      live.textContent = '';
      showError(panel, e);
      return true;
    }
    bar.max = Math.max(1, job.totalBatches);
    bar.value = job.completedBatches;
    live.textContent = job.status === 'Completed'
      ? `Done: ${job.summary.succeeded} succeeded, ${job.summary.failed} failed, ${job.summary.rejected} rejected, ${job.summary.cancelled ?? 0} cancelled of ${job.summary.total}.`
      : `${job.status}: ${job.completedBatches} of ${job.totalBatches || '…'} batches done.`;
    // Each running batch is a generation: its stage and step show here.
    for (const batch of job.batches.slice(0, 50)) {
      if (['Completed', 'Failed', 'Terminated'].includes(batchStatus.get(batch)?.status)) continue;
      try { batchStatus.set(batch, await getJson(`generations/${batch}`)); } catch { /* not started yet */ }
    }
    batches.replaceChildren(...job.batches.slice(0, 50).map((batch) => {
      const s = batchStatus.get(batch);
      const step = s?.progress ? ` · ${s.progress.stage} step ${s.progress.step}/${s.progress.stepCount}` : '';
      return h('li', {}, h('code', {}, batch), ' ', h('span', { class: `status ${s?.status || ''}` }, s?.status || 'waiting'), step);
    }));
    if (job.status === 'Completed') {
      downloads.replaceChildren(
        h('button', { type: 'button', onclick: () => download(job.manifestUrl, `${jobId}-manifest.jsonl`) }, 'Download manifest'),
        h('button', { type: 'button', onclick: () => download(job.zipUrl, `${jobId}.zip`) }, 'Download zip of images'));
      results.replaceChildren(...job.results.map((r) => h('figure', { class: 'image' },
        r.images.length ? apiImage(r.images[0], r.prompt || '') : h('div', { class: 'notice' }, r.error || r.status),
        h('figcaption', {}, h('strong', {}, `#${r.index} `), r.prompt, ' ', h('span', { class: `status ${r.status}` }, r.status),
          h('div', { class: 'muted' }, `seed ${r.seed ?? '—'} · ${r.width ?? ''}×${r.height ?? ''}`)))));
      return true;
    }
    return job.status === 'Failed' || job.status === 'Terminated';
  }, 1000);
}
