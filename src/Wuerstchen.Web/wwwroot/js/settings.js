// The generation settings both Generate and Bulk offer: size (valid sizes only), images, seed, steps, guidance, models.
import { getJson } from './api.js';
import { h, field, number, select, sizes, randomSeed } from './ui.js';

let catalog = null;

/** Installed models per stage and the published fine-tuned versions, fetched once per page load. */
export function modelCatalog() {
  catalog ||= Promise.all([
    getJson('models/installed').catch(() => ({ models: [] })),
    getJson('models').catch(() => ({ models: [] })),
  ]).then(([installed, published]) => ({
    installed: installed.models, published: published.models,
    defaults: { prior: installed.defaultPriorModel, decoder: installed.defaultDecoderModel },
  }));
  return catalog;
}

export function forgetModelCatalog() { catalog = null; }

/** Fills the prior and decoder selects; a model named in `wanted` is selected (and added when unknown). */
export async function fillModelSelects(form, wanted = {}) {
  const { installed, published, defaults } = await modelCatalog();
  const prior = form.elements.priorModel, decoder = form.elements.decoderModel;
  if (defaults.prior) prior.options[0].textContent = `Server default (${defaults.prior})`;
  if (defaults.decoder) decoder.options[0].textContent = `Server default (${defaults.decoder})`;
  const add = (selectElement, value, label) => selectElement.append(h('option', { value }, label));
  for (const m of installed.filter((m) => m.stage === 'prior')) add(prior, m.name, `${m.name} (installed)`);
  for (const v of published) {
    add(prior, v.name, `${v.name} (fine-tuned from ${v.basePrior}, EMA)`);
    add(prior, v.rawName, `${v.rawName} (fine-tuned, raw)`);
  }
  for (const m of installed.filter((m) => m.stage === 'decoder')) add(decoder, m.name, `${m.name} (installed)`);
  for (const [selectElement, value] of [[prior, wanted.priorModel], [decoder, wanted.decoderModel]]) {
    if (!value) continue;
    if (![...selectElement.options].some((o) => o.value === value)) add(selectElement, value, value);
    selectElement.value = value;
  }
}

export function settingsFields(prefix = '') {
  const seed = number({ name: 'seed', min: 0, step: 1, placeholder: 'random' });
  return [
    h('div', { class: 'row' },
      field('Width', select(sizes.map((s) => [s, `${s} px`]), { name: 'width' }), { api: `${prefix}width` }),
      field('Height', select(sizes.map((s) => [s, `${s} px`]), { name: 'height' }), { api: `${prefix}height` })),
    h('div', { class: 'row' },
      field('Images', number({ name: 'images', min: 1, max: 4, step: 1, value: 1 }), { api: `${prefix}images`, hint: 'Per prompt, 1 … 4.' }),
      h('div', {}, field('Seed', seed, { api: `${prefix}seed`, hint: 'Blank for a random seed.' }),
        h('button', { type: 'button', class: 'link', onclick: () => { seed.value = randomSeed(); } }, 'Pick a seed'))),
    h('div', { class: 'row3' },
      field('Stage C steps', number({ name: 'priorSteps', min: 1, max: 200, step: 1, placeholder: '29' }), { api: `${prefix}priorSteps`, hint: 'Blank: the recommended schedule.' }),
      field('Guidance', number({ name: 'priorGuidance', min: 0, max: 30, step: 0.1, value: 4 }), { api: `${prefix}priorGuidance` }),
      field('Stage B steps', number({ name: 'decoderSteps', min: 1, max: 100, step: 1, value: 12 }), { api: `${prefix}decoderSteps` })),
    field('Model (Stage C)', select([['', 'Server default']], { name: 'priorModel' }), { api: `${prefix}priorModel`, hint: 'The base prior or any fine-tuned version.' }),
    field('Decoder (Stage B/A)', select([['', 'Server default']], { name: 'decoderModel' }), { api: `${prefix}decoderModel` }),
  ];
}

/** Puts a recipe (status.recipe settings, or a gallery item) into the settings fields. */
export function applySettings(form, s) {
  const set = (name, value) => { if (value !== undefined && value !== null && form.elements[name]) form.elements[name].value = value; };
  set('width', s.width); set('height', s.height); set('images', s.images ?? s.imagesPerPrompt);
  set('seed', s.seed); set('priorSteps', s.priorSteps); set('priorGuidance', s.priorGuidance ?? s.priorGuidanceScale);
  set('decoderSteps', s.decoderSteps);
}
