// The web app's router: #/page/id?query → a page function that fills <main>.
import { changeKey, apiKey } from './api.js';
import { h } from './ui.js';
import { generatePage } from './generate.js';
import { galleryPage, generationPage } from './gallery.js';
import { bulkPage, bulkJobPage } from './bulk.js';
import { fineTunePage, fineTuneRunPage, modelsPage } from './finetune.js';

const pages = {
  generate: (main, id, params) => generatePage(main, params),
  gallery: (main, id, params) => (id ? generationPage(main, id) : galleryPage(main, params)),
  bulk: (main, id) => (id ? bulkJobPage(main, id) : bulkPage(main)),
  finetune: (main, id) => (id ? fineTuneRunPage(main, id) : fineTunePage(main)),
  models: (main) => modelsPage(main),
};

const titles = { generate: 'Generate', gallery: 'Gallery', bulk: 'Bulk', finetune: 'Fine-tuning', models: 'Models' };

async function route() {
  const [path, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [name, ...rest] = path.split('/');
  const page = pages[name] ? name : 'generate';
  const id = rest.length ? decodeURIComponent(rest.join('/')) : null;
  const main = document.getElementById('main');
  main.replaceChildren();
  delete main.dataset.ready;
  main.dataset.page = page;
  main.setAttribute('aria-busy', 'true');
  for (const link of document.querySelectorAll('nav a[data-page]'))
    link.toggleAttribute('aria-current', link.dataset.page === page) && link.setAttribute('aria-current', 'page');
  document.title = `${titles[page]}${id ? ` ${id}` : ''} · Würstchen`;
  try {
    await pages[page](main, id, new URLSearchParams(query));
  } catch (e) {
    main.append(h('p', { class: 'alert', role: 'alert' }, `This page could not be shown: ${e.message}`));
  } finally {
    main.removeAttribute('aria-busy');
    main.dataset.ready = 'true';
  }
}

document.getElementById('key-button').addEventListener('click', () => changeKey().then(route));
document.getElementById('key-button').hidden = !apiKey.get();
window.addEventListener('hashchange', () => { route(); document.getElementById('main').focus({ preventScroll: true }); });
route();
