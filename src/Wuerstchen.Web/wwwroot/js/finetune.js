// Fine-tuning: start a run on a dataset with a recipe; follow its step, ETA and loss curve (training and evaluation
// loss from the loss log), the EMA-over-raw validation grid of every checkpoint, dataset problems; cancel, resume, and
// the published version one click from Generate.
import { getJson, postJson, del, ApiError } from './api.js';
import { h, field, input, number, select, alertBox, showError, clearErrors, apiImage, poll, formatDuration, formatTime, recipeList } from './ui.js';
import { modelCatalog, forgetModelCatalog } from './settings.js';

const RECENT = 'wuerstchen.fineTunes';
const recentRuns = () => JSON.parse(localStorage.getItem(RECENT) || '[]');
const remember = (id, request) => localStorage.setItem(RECENT, JSON.stringify(
  [{ id, request, at: new Date().toISOString() }, ...recentRuns().filter((r) => r.id !== id)].slice(0, 20)));

export async function fineTunePage(main) {
  const form = h('form', { class: 'panel', novalidate: true, 'aria-labelledby': 'ft-title' },
    h('h1', { id: 'ft-title' }, 'Fine-tune Stage C'),
    alertBox(),
    field('Dataset prefix', input({ name: 'prefix', placeholder: 'datasets/pokemon/', required: true }), { api: 'dataset.prefix', hint: 'A folder of the store: images with captions (name.png + name.txt, or metadata.jsonl).' }),
    field('Recipe', select([['blog', 'blog (Würstchen v2 Pokémon recipe)'], ['diffusers', 'diffusers (training example)']], { name: 'recipe' }), { api: 'recipe' }),
    field('Base prior', select([['', 'Default (the server\'s model, else the recipe\'s)']], { name: 'basePrior' }), { api: 'basePrior', hint: 'An installed prior or an earlier fine-tune.' }),
    h('div', { class: 'row' },
      field('Total steps', number({ name: 'totalSteps', min: 1, step: 1, value: 1000 }), { api: 'totalSteps' }),
      field('Steps per chunk', number({ name: 'stepsPerChunk', min: 1, step: 1, placeholder: '250' }), { api: 'stepsPerChunk', hint: 'A checkpoint and a grid after each.' })),
    h('div', { class: 'row' },
      field('Learning rate', number({ name: 'learningRate', min: 0, step: 'any', placeholder: '0.0001' }), { api: 'learningRate' }),
      field('Batch size', number({ name: 'batchSize', min: 1, step: 1, placeholder: 'recipe' }), { api: 'batchSize' })),
    h('div', { class: 'row' },
      field('Resolution', number({ name: 'resolution', min: 64, step: 32, placeholder: '768' }), { api: 'resolution' }),
      field('Run id', input({ name: 'runId', placeholder: 'made for you' }), { api: 'runId', hint: 'The same id again resumes.' })),
    field('Validation prompts', h('textarea', { name: 'validationPrompts', rows: 2, placeholder: 'one per line' }), { api: 'validationPrompts', hint: 'Blank: the recipe\'s prompts. Your prompts get seeds 0, 1, …' }),
    h('div', { class: 'row3' },
      field('Grid size', number({ name: 'validationSize', min: 128, step: 128, placeholder: '1024' }), { api: 'validationSize' }),
      field('Grid Stage C steps', number({ name: 'validationPriorSteps', min: 1, step: 1 }), { api: 'validationPriorSteps' }),
      field('Grid Stage B steps', number({ name: 'validationDecoderSteps', min: 1, step: 1 }), { api: 'validationDecoderSteps' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Start fine-tune')));
  const runs = recentRuns();
  main.append(h('div', { class: 'columns' }, form, h('section', { class: 'panel', 'aria-labelledby': 'runs-title' },
    h('h2', { id: 'runs-title' }, 'Runs started from this browser'),
    runs.length ? h('ul', { class: 'jobs' }, runs.map((r) => h('li', {}, h('a', { href: `#/finetune/${r.id}` }, r.id), ` · ${formatTime(r.at)}`)))
      : h('p', { class: 'muted' }, 'None yet.'))));
  const { installed, published } = await modelCatalog();
  for (const name of [...installed.filter((m) => m.stage === 'prior').map((m) => m.name), ...published.map((v) => v.name)])
    form.elements.basePrior.append(h('option', { value: name }, name));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const v = (n) => form.elements[n].value.trim();
    const num = (n) => (v(n) === '' ? undefined : Number(v(n)));
    const body = {
      dataset: { prefix: v('prefix') }, recipe: v('recipe'), basePrior: v('basePrior') || undefined, runId: v('runId') || undefined,
      totalSteps: num('totalSteps'), stepsPerChunk: num('stepsPerChunk'), learningRate: num('learningRate'), batchSize: num('batchSize'),
      resolution: num('resolution'), validationSize: num('validationSize'), validationPriorSteps: num('validationPriorSteps'),
      validationDecoderSteps: num('validationDecoderSteps'),
      validationPrompts: v('validationPrompts') ? v('validationPrompts').split(/\r?\n/).map((p) => p.trim()).filter(Boolean) : undefined,
    };
    // Prompts of one's own get seeds 0, 1, … (the recipe's seeds go with the recipe's prompts).
    if (body.validationPrompts) body.validationSeeds = body.validationPrompts.map((_, i) => i);
    try {
      const started = await postJson('finetunes', body);
      remember(started.id, body);
      location.hash = `#/finetune/${started.id}`;
    } catch (e) {
      showError(form, e, { dataset: 'dataset.prefix' });
    }
  });
}

export async function fineTuneRunPage(main, id) {
  const live = h('p', { role: 'status', 'aria-live': 'polite' }, 'Loading…');
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Training steps' });
  const stats = h('div', { class: 'stats' });
  const actions = h('div', { class: 'actions' });
  const panel = h('section', { class: 'panel', 'aria-labelledby': 'run-title' },
    h('h1', { id: 'run-title' }, 'Fine-tune ', h('code', {}, id)), alertBox(), live, bar, stats, actions);
  const chart = h('div', { id: 'loss-chart' }, h('p', { class: 'muted' }, 'No loss yet.'));
  const grids = h('div', { class: 'grid-view', id: 'grids' }, h('p', { class: 'muted' }, 'No validation grid yet.'));
  const problems = h('div', { id: 'problems' });
  const checkpoints = h('div', { id: 'checkpoints' });
  main.append(h('p', {}, h('a', { href: '#/finetune' }, '← Fine-tuning')), panel,
    h('div', { class: 'columns' },
      h('section', { class: 'panel', 'aria-labelledby': 'loss-title' }, h('h2', { id: 'loss-title' }, 'Loss'), chart),
      h('section', { class: 'panel', 'aria-labelledby': 'grid-title' }, h('h2', { id: 'grid-title' }, 'Validation grid (EMA above raw)'), grids)),
    h('section', { class: 'panel', 'aria-labelledby': 'ds-title' }, h('h2', { id: 'ds-title' }, 'Dataset'), problems),
    h('section', { class: 'panel', 'aria-labelledby': 'cp-title' }, h('h2', { id: 'cp-title' }, 'Checkpoints'), checkpoints));

  const samples = [];
  let lastStep = -1, lastGridCount = -1, lastActions = '';
  poll(async () => {
    let s;
    try {
      s = await getJson(`finetunes/${encodeURIComponent(id)}`);
    } catch (e) {
      live.textContent = '';
      showError(panel, e);
      return true;
    }
    const now = Date.now();
    if (s.phase === 'Training') samples.push([now, s.step]);
    while (samples.length > 30) samples.shift();
    const rate = samples.length > 1 && samples.at(-1)[1] > samples[0][1] ? (samples.at(-1)[1] - samples[0][1]) / ((samples.at(-1)[0] - samples[0][0]) / 1000) : NaN;
    const eta = (s.totalSteps - s.step) / rate;
    bar.max = Math.max(1, s.totalSteps);
    bar.value = s.step;
    const ended = ['Completed', 'Failed', 'Terminated'].includes(s.status);
    live.textContent = ended
      ? `${s.status === 'Terminated' ? 'Cancelled' : s.status} at step ${s.step} of ${s.totalSteps}.${s.error ? ` ${s.error}` : ''}`
      : `${s.phase || s.status}: step ${s.step} of ${s.totalSteps}${Number.isFinite(eta) ? `, about ${formatDuration(eta)} left` : ''}.`;
    stats.replaceChildren(...[['Phase', s.phase || s.status], ['Step', `${s.step} / ${s.totalSteps}`], ['ETA', ended ? '—' : formatDuration(eta)],
      ['Loss', s.loss?.toFixed(5) ?? '—'], ['Learning rate', s.learningRate?.toExponential(2) ?? '—'], ['Items', s.datasetItems ?? '—']]
      .map(([k, value]) => h('div', {}, h('span', { class: 'muted' }, k), h('span', { class: 'v' }, value))));

    const actionKey = `${s.status}|${s.model}`;
    if (actionKey !== lastActions) {
      lastActions = actionKey;
      actions.replaceChildren(...[
        !ended && h('button', { type: 'button', class: 'danger', onclick: async (event) => {
          event.target.disabled = true;
          try { await del(`finetunes/${id}`); live.textContent = 'Cancelling…'; } catch (e) { showError(panel, e); }
        } }, 'Cancel'),
        ended && s.status !== 'Completed' && h('button', { type: 'button', onclick: () => resume(id, s, panel) }, 'Resume'),
        s.model && h('a', { class: 'button primary', href: `#/generate?model=${encodeURIComponent(s.model)}` }, `Generate with ${s.model}`),
        s.rawModel && h('a', { class: 'button', href: `#/generate?model=${encodeURIComponent(s.rawModel)}` }, 'Generate with the raw weights'),
      ].filter(Boolean));
      if (s.model) forgetModelCatalog();
    }
    problems.replaceChildren(
      h('p', {}, `${s.datasetItems ?? '—'} items used; ${s.datasetProblems.length} skipped.`),
      s.datasetProblems.length ? h('div', { class: 'table-wrap' }, h('table', {}, h('caption', { class: 'visually-hidden' }, 'Dataset problems by item'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Item'), h('th', { scope: 'col' }, 'Problem'))),
        h('tbody', {}, s.datasetProblems.map((p) => h('tr', {}, h('td', { class: 'mono' }, p.name), h('td', {}, p.reason)))))) : null);
    checkpoints.replaceChildren(
      s.checkpoints.length ? h('ul', {}, s.checkpoints.map((c) => h('li', {}, `step ${c.step}`, c.complete ? '' : ' (incomplete)'))) : h('p', { class: 'muted' }, 'None yet.'),
      s.skippedCheckpoints?.length ? h('ul', {}, s.skippedCheckpoints.map((c) => h('li', { class: 'alert' }, `step ${c.step} skipped: ${c.reason}`))) : null,
      s.resumedFrom ? h('p', {}, `Resumed from step ${s.resumedFrom}.`) : null);

    if (s.step !== lastStep || ended) {
      lastStep = s.step;
      try { drawLoss(chart, (await getJson(`finetunes/${encodeURIComponent(id)}/loss`)).points); } catch { /* not yet */ }
      try {
        const list = (await getJson(`finetunes/${encodeURIComponent(id)}/grids`)).grids;
        if (list.length !== lastGridCount) { lastGridCount = list.length; showGrids(grids, list); }
      } catch { /* not yet */ }
    }
    return ended;
  }, 1500);
}

async function resume(id, status, panel) {
  const known = recentRuns().find((r) => r.id === id);
  if (!known) {
    showError(panel, new ApiError(404, { detail: 'This browser does not hold the run\'s request; start it again from the form with the same run id.' }));
    return;
  }
  try {
    const started = await postJson('finetunes', { ...known.request, runId: status.runId });
    remember(started.id, { ...known.request, runId: status.runId });
    location.hash = `#/finetune/${started.id}`;
    if (started.id === id) location.reload();
  } catch (e) { showError(panel, e); }
}

/** Training loss per step (line) and the evaluation loss at step 0 and each chunk's end (points), on one SVG. */
export function drawLoss(container, points) {
  const train = points.filter((p) => p.loss !== null && p.loss !== undefined);
  const evals = points.filter((p) => p.evalLoss !== null && p.evalLoss !== undefined);
  if (train.length + evals.length === 0) return;
  const W = 640, H = 280, L = 56, R = 12, T = 12, B = 34;
  const steps = [...train, ...evals].map((p) => p.step);
  const values = [...train.map((p) => p.loss), ...evals.map((p) => p.evalLoss)];
  const x0 = Math.min(...steps), x1 = Math.max(...steps, x0 + 1);
  let y0 = Math.min(...values), y1 = Math.max(...values);
  if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
  const x = (s) => L + ((s - x0) / (x1 - x0)) * (W - L - R);
  const y = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  const ns = 'http://www.w3.org/2000/svg';
  const el = (tag, attributes, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const last = train.at(-1), lastEval = evals.at(-1);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
    'aria-label': `Loss curve: ${train.length} training points${last ? `, latest ${last.loss.toFixed(4)} at step ${last.step}` : ''}; ${evals.length} evaluation points${lastEval ? `, latest ${lastEval.evalLoss.toFixed(4)}` : ''}.` });
  svg.append(el('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }), el('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
  for (const v of [y0, (y0 + y1) / 2, y1]) svg.append(el('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, v.toPrecision(3)));
  for (const s of [x0, Math.round((x0 + x1) / 2), x1]) svg.append(el('text', { x: x(s), y: H - B + 16, 'text-anchor': 'middle' }, String(s)));
  svg.append(el('text', { x: (L + W) / 2, y: H - 4, 'text-anchor': 'middle' }, 'step'));
  if (train.length) svg.append(el('polyline', { class: 'train', points: train.map((p) => `${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join(' ') }));
  if (evals.length > 1) svg.append(el('polyline', { class: 'eval', fill: 'none', points: evals.map((p) => `${x(p.step).toFixed(1)},${y(p.evalLoss).toFixed(1)}`).join(' '), style: 'fill:none' }));
  for (const p of evals) svg.append(el('circle', { class: 'eval', cx: x(p.step).toFixed(1), cy: y(p.evalLoss).toFixed(1), r: 3.5 }));
  container.replaceChildren(svg,
    h('div', { class: 'legend' },
      h('span', {}, h('span', { class: 'swatch', style: 'background:var(--accent)' }), 'training loss'),
      h('span', {}, h('span', { class: 'swatch', style: 'background:var(--focus)' }), 'evaluation loss (raw weights, fixed batch)')));
}

/** The grid of each checkpoint, with a slider (and its keyboard keys) across checkpoints. */
function showGrids(container, grids) {
  if (grids.length === 0) return;
  grids.sort((a, b) => a.step - b.step);
  const label = h('p', { role: 'status', 'aria-live': 'polite' });
  const frame = h('div', {});
  const slider = h('input', { type: 'range', min: 0, max: grids.length - 1, step: 1, value: grids.length - 1, id: 'grid-slider',
    'aria-valuetext': `step ${grids.at(-1).step}` });
  const show = () => {
    const g = grids[Number(slider.value)];
    slider.setAttribute('aria-valuetext', `step ${g.step}`);
    label.textContent = `Checkpoint at step ${g.step} (${Number(slider.value) + 1} of ${grids.length})`;
    frame.replaceChildren(apiImage(g.url, `Validation grid at step ${g.step}: EMA weights above, raw weights below`));
  };
  slider.addEventListener('input', show);
  container.replaceChildren(h('label', { for: 'grid-slider' }, 'Checkpoint'), slider, label, frame);
  show();
}

export async function modelsPage(main) {
  main.append(h('h1', {}, 'Models'));
  const { installed, published } = await modelCatalog();
  main.append(
    h('section', { class: 'panel', 'aria-labelledby': 'inst-title' }, h('h2', { id: 'inst-title' }, 'Installed'),
      installed.length ? h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Name', 'Stage', 'Size'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, installed.map((m) => h('tr', {}, h('td', { class: 'mono' }, m.name), h('td', {}, m.stage === 'prior' ? 'Stage C (prior)' : 'Stage B/A (decoder)'),
          h('td', {}, formatSize(m.sizeBytes))))))) : h('p', { class: 'muted' }, 'No models under the model root.')),
    h('section', { class: 'panel', 'aria-labelledby': 'pub-title' }, h('h2', { id: 'pub-title' }, 'Published fine-tuned versions'),
      published.length ? h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Version', 'Base', 'Dataset', 'Dataset hash', 'Recipe', 'Steps', 'Size', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, published.map((v) => h('tr', {},
          h('td', { class: 'mono' }, v.name), h('td', { class: 'mono' }, v.basePrior), h('td', {}, `${v.datasetKey} (${v.datasetItems} items)`),
          h('td', { class: 'mono', title: v.datasetVersion }, v.datasetVersion.slice(0, 12)), h('td', {}, v.recipe), h('td', {}, v.steps),
          h('td', {}, formatSize(v.sizeBytes)),
          h('td', {}, h('a', { class: 'button', href: `#/generate?model=${encodeURIComponent(v.name)}` }, 'Generate'))))))) : h('p', { class: 'muted' }, 'None yet: a finished fine-tune publishes one.')));
}

function formatSize(bytes) {
  if (bytes === undefined || bytes === null) return '—';
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GiB` : bytes >= 1024 ** 2 ? `${(bytes / 1024 ** 2).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(0)} KiB`;
}

export { recipeList };
