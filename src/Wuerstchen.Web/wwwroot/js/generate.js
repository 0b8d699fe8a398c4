// Generate: the form, live progress per stage and step, then each image with its recipe and actions.
import { getJson, postJson, del, download, ApiError } from './api.js';
import { h, field, alertBox, showError, clearErrors, apiImage, recipeList, copyText, poll, randomSeed, readSettings, number } from './ui.js';
import { settingsFields, fillModelSelects, applySettings } from './settings.js';

const STAGES = [['StageC', 'Stage C', 'text → latents'], ['StageB', 'Stage B', 'latents → VQ'], ['StageA', 'Stage A', 'decode pixels']];

export async function generatePage(main, params) {
  const form = h('form', { class: 'panel', novalidate: true, 'aria-labelledby': 'generate-title' },
    h('h1', { id: 'generate-title' }, 'Generate'),
    alertBox(),
    field('Prompt', h('textarea', { name: 'prompt', rows: 3, required: true }), { api: 'prompt' }),
    field('Negative prompt', h('textarea', { name: 'negativePrompt', rows: 2 }), { api: 'negativePrompt', hint: 'What the image should not show.' }),
    settingsFields(),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Generate')));
  form.elements.width.value = '1024';
  form.elements.height.value = '1024';
  const output = h('section', { 'aria-label': 'Results', id: 'results' });
  main.append(h('div', { class: 'columns' }, form, output));

  const wanted = { priorModel: params.get('model') || undefined };
  if (params.get('from')) {
    try {
      const source = await getJson(`generations/${encodeURIComponent(params.get('from'))}`);
      fillFromRecipe(form, source.recipe, 0);
      wanted.priorModel = source.recipe?.settings?.priorModel;
      wanted.decoderModel = source.recipe?.settings?.decoderModel;
    } catch (e) { showError(form, e); }
  }
  await fillModelSelects(form, wanted);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = { prompt: form.elements.prompt.value, negativePrompt: form.elements.negativePrompt.value || undefined, ...readSettings(form) };
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const started = await postJson('generations', body);
      follow(output, started.id, form);
    } catch (e) {
      showError(form, e);
    } finally {
      button.disabled = false;
    }
  });
  form.elements.prompt.focus();
}

function fillFromRecipe(form, recipe, itemIndex) {
  if (!recipe) return;
  const item = recipe.items[itemIndex] || recipe.items[0];
  const s = recipe.settings;
  form.elements.prompt.value = item.prompt;
  form.elements.negativePrompt.value = item.negativePrompt || '';
  applySettings(form, {
    width: s.width, height: s.height, images: s.imagesPerPrompt, seed: item.seed, priorGuidance: s.priorGuidanceScale,
    priorSteps: s.priorTimesteps ? '' : s.priorSteps, decoderSteps: s.decoderTimesteps ? s.decoderTimesteps.length - 1 : s.decoderSteps,
  });
  for (const name of ['priorModel', 'decoderModel']) {
    const selectElement = form.elements[name];
    if (![...selectElement.options].some((o) => o.value === s[name])) selectElement.append(h('option', { value: s[name] }, s[name]));
    selectElement.value = s[name];
  }
}

/** Follows a generation in a result block at the top of `output`: progress, cancel, then images. */
export function follow(output, id, form, title = 'Generation') {
  const live = h('p', { class: 'status-line', 'aria-live': 'polite', role: 'status' }, 'Queued…');
  const bars = new Map(STAGES.map(([key, name, what]) => {
    const bar = h('progress', { max: 1, value: 0, 'aria-label': `${name} progress` });
    const label = h('span', { class: 'muted' }, 'waiting');
    return [key, { bar, label, row: h('li', {}, h('span', { class: 'name' }, name), ' ', h('span', { class: 'muted' }, what), bar, label) }];
  }));
  const cancel = h('button', { type: 'button', class: 'danger', onclick: async () => {
    cancel.disabled = true;
    try { await del(`generations/${id}`); live.textContent = 'Cancelling…'; } catch (e) { live.textContent = e instanceof ApiError ? e.message : String(e); }
  } }, 'Cancel');
  const images = h('div', { class: 'results' });
  const block = h('section', { class: 'panel generation', 'data-id': id, 'aria-label': `${title} ${id}` },
    h('h2', {}, title, ' ', h('code', {}, id)), live, h('ul', { class: 'stages' }, [...bars.values()].map((b) => b.row)),
    h('div', { class: 'actions' }, cancel), images);
  output.prepend(block);
  block.scrollIntoView?.({ block: 'nearest' });

  let lastAnnounced = 0, lastStage = '';
  poll(async () => {
    const status = await getJson(`generations/${id}`);
    const current = status.progress?.stage || status.stage;
    const index = STAGES.findIndex(([key]) => key === current);
    STAGES.forEach(([key], i) => {
      const { bar, label } = bars.get(key);
      if (status.status === 'Completed' || i < index) { bar.max = 1; bar.value = 1; label.textContent = 'done'; }
      else if (i === index && status.progress?.stage === key) {
        bar.max = status.progress.stepCount; bar.value = status.progress.step;
        label.textContent = `step ${status.progress.step} of ${status.progress.stepCount}`;
      } else if (i === index) { label.textContent = 'starting'; }
    });
    const stageName = STAGES[index]?.[1];
    const now = Date.now();
    if (status.status === 'Running' && stageName && (current !== lastStage || now - lastAnnounced > 3000)) {
      live.textContent = status.progress?.stage === current
        ? `${stageName}: step ${status.progress.step} of ${status.progress.stepCount}` : `${stageName}: starting`;
      lastStage = current; lastAnnounced = now;
    }
    if (status.status === 'Completed') {
      live.textContent = `Done: ${status.images.length} image${status.images.length === 1 ? '' : 's'}.`;
      cancel.remove();
      showImages(images, status, output, form);
      return true;
    }
    if (status.status === 'Failed' || status.status === 'Terminated') {
      live.textContent = status.status === 'Terminated' ? 'Cancelled.' : `Failed: ${status.error || 'no reason given'}`;
      block.classList.add(status.status);
      cancel.remove();
      return true;
    }
    return false;
  }, 500);
}

/** The recipe of image n of a status, as embedded in its PNG. */
export function recipeOf(status, n) {
  const s = status.recipe.settings;
  const per = s.imagesPerPrompt || 1;
  const item = status.recipe.items[Math.floor(n / per)];
  return {
    prompt: item.prompt, negativePrompt: item.negativePrompt ?? null, seed: item.seed, decoderSeed: item.decoderSeed ?? item.seed + 1,
    width: s.width, height: s.height, imageIndex: n % per,
    priorSteps: s.priorTimesteps ? s.priorTimesteps.length - 1 : s.priorSteps, priorGuidance: s.priorGuidanceScale,
    decoderSteps: s.decoderTimesteps ? s.decoderTimesteps.length - 1 : s.decoderSteps, decoderGuidance: s.decoderGuidanceScale,
    priorModel: s.priorModel, decoderModel: s.decoderModel, precision: s.precision,
  };
}

export function recipeEntries(r) {
  return [['Prompt', r.prompt], ['Negative', r.negativePrompt], ['Size', `${r.width} × ${r.height}`], ['Seed', r.seed],
    ['Decoder seed', r.decoderSeed], ['Stage C steps', r.priorSteps], ['Guidance', r.priorGuidance], ['Stage B steps', r.decoderSteps],
    ['Model', r.priorModel], ['Decoder', r.decoderModel]];
}

export function showImages(container, status, output, form) {
  container.replaceChildren(...status.images.map((url, n) => {
    const recipe = recipeOf(status, n);
    const copied = h('span', { role: 'status', class: 'muted' });
    const decoderSeed = number({ name: 'decoderSeed', min: 0, step: 1, value: randomSeed() });
    const redecodeForm = h('form', { class: 'redecode', novalidate: true },
      h('div', { class: 'inline' }, field('New decoder seed', decoderSeed, { api: 'decoderSeed' })),
      alertBox(),
      h('button', { type: 'submit' }, 'Re-decode'));
    redecodeForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(redecodeForm);
      try {
        const started = await postJson(`generations/${status.id}/redecode`, { decoderSeed: Number(decoderSeed.value) });
        follow(output, started.id, form, 'Re-decode');
      } catch (e) { showError(redecodeForm, e); }
    });
    return h('figure', { class: 'image' },
      apiImage(url, recipe.prompt, { width: recipe.width, height: recipe.height }),
      h('figcaption', {},
        recipeList(recipeEntries(recipe)),
        h('div', { class: 'actions' },
          h('button', { type: 'button', onclick: () => download(url, `${status.id}-${n}.png`) }, 'Download'),
          h('button', { type: 'button', onclick: async () => {
            copied.textContent = (await copyText(JSON.stringify(recipe, null, 2))) ? 'Recipe copied.' : 'Could not copy.';
          } }, 'Copy recipe'),
          form ? h('button', { type: 'button', onclick: () => {
            fillFromRecipe(form, status.recipe, Math.floor(n / (status.recipe.settings.imagesPerPrompt || 1)));
            form.requestSubmit();
          } }, 'Re-generate') : h('a', { class: 'button', href: `#/generate?from=${encodeURIComponent(status.id)}` }, 'Re-generate'),
          copied),
        redecodeForm));
  }));
}
