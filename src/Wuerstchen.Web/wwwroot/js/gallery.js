// Gallery: recent generations newest first, paged with the API's continuation token, filtered by model and text;
// one generation's recipe, images and lineage (model version, base, dataset).
import { getJson } from './api.js';
import { h, field, input, select, alertBox, showError, apiImage, recipeList, formatTime } from './ui.js';
import { modelCatalog } from './settings.js';
import { follow, showImages, recipeOf, recipeEntries } from './generate.js';

const PAGE = 24;

export async function galleryPage(main, params) {
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the gallery' },
    field('Model', select([['', 'All models']], { name: 'model' }), { api: 'model' }),
    field('Text', input({ type: 'search', name: 'q', placeholder: 'words in the prompt' }), { api: 'q' }),
    h('div', { class: 'field' }, h('button', { type: 'submit', class: 'primary' }, 'Filter')),
    alertBox());
  const list = h('ul', { class: 'gallery', 'aria-label': 'Generations, newest first' });
  const count = h('p', { class: 'muted', role: 'status' });
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  main.append(h('h1', {}, 'Gallery'), form, count, list, h('div', { class: 'actions' }, more));

  const { installed, published } = await modelCatalog();
  for (const name of [...installed.filter((m) => m.stage === 'prior').map((m) => m.name), ...published.flatMap((v) => [v.name, v.rawName])])
    form.elements.model.append(h('option', { value: name }, name));
  form.elements.model.value = params.get('model') || '';
  form.elements.q.value = params.get('q') || '';

  let token = null, shown = 0;
  async function load(reset) {
    if (reset) { list.replaceChildren(); token = null; shown = 0; }
    const query = new URLSearchParams({ limit: PAGE });
    if (form.elements.model.value) query.set('model', form.elements.model.value);
    if (form.elements.q.value.trim()) query.set('q', form.elements.q.value.trim());
    if (token) query.set('continuationToken', token);
    more.disabled = true;
    try {
      const page = await getJson(`generations?${query}`);
      for (const item of page.items) list.append(card(item));
      shown += page.items.length;
      token = page.continuationToken;
      more.hidden = !token;
      count.textContent = shown === 0 ? 'No generations match.' : `${shown} generation${shown === 1 ? '' : 's'} shown${token ? ', more available' : ''}.`;
    } catch (e) {
      showError(form, e);
    } finally {
      more.disabled = false;
    }
  }
  form.addEventListener('submit', (event) => { event.preventDefault(); load(true); });
  more.addEventListener('click', () => load(false));
  await load(true);
}

function card(item) {
  const thumb = item.images.length > 0
    ? apiImage(item.thumbnails?.[0] || item.images[0], item.prompt)
    : h('span', { class: `status ${item.status}` }, item.status);
  return h('li', {}, h('a', { href: `#/gallery/${encodeURIComponent(item.id)}`, 'data-id': item.id },
    h('div', { class: 'thumb' }, thumb),
    h('div', { class: 'meta' },
      h('div', { class: 'prompt' }, item.prompt),
      h('div', { class: 'muted' }, `${item.width}×${item.height} · ${formatTime(item.createdAt)}`),
      h('div', { class: 'muted' }, item.priorModel, item.redecodeOf ? ' · re-decode' : ''))));
}

export async function generationPage(main, id) {
  const panel = h('section', { class: 'panel', 'aria-labelledby': 'detail-title' }, h('h1', { id: 'detail-title' }, 'Generation ', h('code', {}, id)), alertBox());
  const output = h('section', { 'aria-label': 'Re-decodes' });
  main.append(h('p', {}, h('a', { href: '#/gallery' }, '← Gallery')), panel, output);
  let status;
  try {
    status = await getJson(`generations/${encodeURIComponent(id)}`);
  } catch (e) {
    showError(panel, e);
    return;
  }
  panel.append(h('p', {}, 'Status: ', h('span', { class: `status ${status.status}` }, status.status), ` · created ${formatTime(status.createdAt)}`));
  if (status.error) panel.append(h('p', { class: 'alert' }, status.error));
  if (status.recipe) {
    const recipe = recipeOf(status, 0);
    panel.append(h('h2', {}, 'Recipe'), recipeList(recipeEntries(recipe)));
    panel.append(h('h2', {}, 'Lineage'), await lineage(recipe.priorModel));
  }
  panel.append(h('div', { class: 'actions' }, h('a', { class: 'button', href: `#/generate?from=${encodeURIComponent(id)}` }, 'Open in Generate')));
  if (status.status === 'Completed') {
    const images = h('div', { class: 'results' });
    panel.append(h('h2', {}, 'Images'), images);
    showImages(images, status, output, null);
  } else if (status.status === 'Running' || status.status === 'Pending') {
    follow(output, id, null);
  }
}

/** Where the Stage C model came from: an installed base model, or a fine-tuned version with its base and dataset. */
async function lineage(priorModel) {
  const { published } = await modelCatalog();
  const version = published.find((v) => v.name === priorModel || v.rawName === priorModel);
  if (!version) return recipeList([['Model version', priorModel], ['Kind', 'base model (installed)']]);
  return recipeList([
    ['Model version', priorModel], ['Weights', version.rawName === priorModel ? 'raw' : 'EMA'], ['Base', version.basePrior],
    ['Dataset', version.datasetKey], ['Dataset version', version.datasetVersion], ['Items', version.datasetItems],
    ['Recipe', version.recipe], ['Steps', version.steps], ['Final loss', version.finalLoss?.toFixed?.(5)], ['Published', formatTime(version.createdAt)],
  ]);
}
