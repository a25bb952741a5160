import './style.css';
import { el, replace, append } from './dom';
import { normalizeEndpoint, pageOrigin, resolveEndpoint, Rpc, saveEndpoint, type Head } from './rpc';
import type { Ctx } from './ctx';
import { errorBox, notFound } from './ui';
import { renderDashboard } from './pages/dashboard';
import { renderBlock } from './pages/block';
import { renderTx } from './pages/tx';
import { renderAccount } from './pages/account';
import { renderValidators } from './pages/validators';
import { renderStatus } from './pages/status';
import { renderSearch, routeForQuery } from './pages/search';

type Status = { chainId?: string; latestHeight?: number };

const app = document.getElementById('app')!;
const endpoint = resolveEndpoint();

// ---- header

const heightEl = el('span', { class: 'height mono', 'data-testid': 'latest-height', title: 'latest committed height' }, '—');
const chainEl = el('span', { class: 'chain', 'data-testid': 'chain-id', title: 'chain id' }, '…');
const connEl = el('span', { class: 'conn', 'data-state': 'closed', title: 'live updates (WebSocket)' }, 'offline');
const searchInput = el('input', {
  type: 'search',
  placeholder: 'Block height, tx hash, block hash, account or 0x…40 address',
  'aria-label': 'Search',
  'data-testid': 'search-input',
  spellcheck: 'false',
  autocomplete: 'off',
}) as HTMLInputElement;
const searchForm = el(
  'form',
  {
    class: 'search',
    role: 'search',
    onsubmit: (ev: Event) => {
      ev.preventDefault();
      const q = searchInput.value.trim();
      if (!q) return;
      location.hash = routeForQuery(q);
    },
  },
  searchInput,
  el('button', { type: 'submit', 'data-testid': 'search-button' }, 'Search'),
);

const endpointText = el('span', { class: 'mono', 'data-testid': 'rpc-endpoint', title: endpoint.url ?? '' }, endpoint.url ?? 'none');
const endpointInput = el('input', { type: 'url', 'aria-label': 'RPC endpoint', placeholder: 'http://127.0.0.1:8545', spellcheck: 'false' }) as HTMLInputElement;
endpointInput.value = endpoint.url ?? '';
const endpointError = el('span', { class: 'error-text' });
const endpointForm = el(
  'form',
  {
    class: 'endpoint-form',
    hidden: true,
    onsubmit: (ev: Event) => {
      ev.preventDefault();
      const n = normalizeEndpoint(endpointInput.value);
      if (!n) {
        endpointError.textContent = 'Not an http(s) URL';
        return;
      }
      switchEndpoint(n);
    },
  },
  endpointInput,
  el('button', { type: 'submit' }, 'Use'),
  el('button', { type: 'button', onclick: () => switchEndpoint(null), title: 'Forget the saved endpoint and use this page\'s own origin' }, 'Reset'),
  endpointError,
);

function switchEndpoint(url: string | null): void {
  saveEndpoint(url);
  const u = new URL(location.href);
  if (url) u.searchParams.set('rpc', url);
  else u.searchParams.delete('rpc');
  if (u.toString() === location.href) location.reload();
  else location.assign(u.toString());
}

const header = el(
  'header',
  { class: 'top' },
  el(
    'div',
    { class: 'bar' },
    el('a', { href: '#/', class: 'brand' }, 'Palisade', el('span', { class: 'muted' }, ' explorer')),
    el('nav', null, el('a', { href: '#/' }, 'Dashboard'), el('a', { href: '#/validators' }, 'Validators'), el('a', { href: '#/status' }, 'Status')),
    el('div', { class: 'chaininfo' }, chainEl, el('span', { class: 'muted' }, ' height '), heightEl, ' ', connEl),
  ),
  el('div', { class: 'bar2' }, searchForm),
  el(
    'div',
    { class: 'endpoint muted' },
    'RPC ',
    endpointText,
    ' ',
    el(
      'button',
      {
        type: 'button',
        class: 'link',
        onclick: () => {
          endpointForm.hidden = !endpointForm.hidden;
          if (!endpointForm.hidden) endpointInput.focus();
        },
      },
      'change',
    ),
    endpointForm,
  ),
  // Data from anywhere but the node that served the page is said so, in
  // every view: a link with ?rpc= could point it at a made-up chain.
  endpoint.url && pageOrigin() && endpoint.url !== pageOrigin()
    ? el(
        'div',
        { class: 'notice warn', 'data-testid': 'foreign-endpoint' },
        `Showing data from ${endpoint.url}, not from the node that served this page.`,
      )
    : null,
);

const main = el('main', { id: 'main' });
replace(app, header, main);

// ---- state shared across pages

let latest: number | null = null;
function setLatest(h: number): void {
  if (latest === null || h > latest) {
    latest = h;
    heightEl.textContent = String(h);
    heightEl.title = `latest committed height ${h}`;
  }
}

const rpc = endpoint.url ? new Rpc(endpoint.url) : null;
const headFns = new Set<(h: Head) => void>();

if (rpc) {
  rpc.onState((s) => {
    connEl.dataset.state = s;
    connEl.textContent = s === 'open' ? 'live' : s === 'connecting' ? 'connecting' : 'offline';
  });
  rpc.onHead((h) => {
    setLatest(h.header.height);
    for (const fn of headFns) fn(h);
  });
  rpc
    .call<Status>('system_status')
    .then((s) => {
      if (typeof s.chainId === 'string') chainEl.textContent = s.chainId;
      if (typeof s.latestHeight === 'number') setLatest(s.latestHeight);
    })
    .catch((e) => {
      chainEl.textContent = 'unreachable';
      chainEl.title = String(e instanceof Error ? e.message : e);
    });
  rpc.start();
} else {
  chainEl.textContent = 'no endpoint';
  endpointForm.hidden = false;
}

// ---- routing

let generation = 0;
let leaveFns: (() => void)[] = [];

function leave(): void {
  for (const fn of leaveFns) {
    try {
      fn();
    } catch {
      // ignore
    }
  }
  leaveFns = [];
  headFns.clear();
}

function makeCtx(r: Rpc, gen: number): Ctx {
  return {
    rpc: r,
    latest: () => latest,
    alive: () => gen === generation,
    onHead: (fn) => {
      if (gen === generation) headFns.add(fn);
    },
    every: (ms, fn) => {
      let busy = false;
      const id = window.setInterval(() => {
        if (document.hidden || busy || gen !== generation) return;
        busy = true;
        Promise.resolve()
          .then(fn)
          .catch(() => undefined)
          .finally(() => {
            busy = false;
          });
      }, ms);
      leaveFns.push(() => window.clearInterval(id));
    },
    onLeave: (fn) => {
      leaveFns.push(fn);
    },
    navigate: (hash, replaceEntry) => {
      if (replaceEntry) location.replace(hash);
      else location.hash = hash;
    },
  };
}

function setActiveNav(route: string): void {
  for (const a of header.querySelectorAll('nav a')) {
    const href = a.getAttribute('href') ?? '';
    a.classList.toggle('active', href === `#/${route}` || (route === '' && href === '#/'));
  }
}

function route(): void {
  leave();
  const gen = ++generation;
  const raw = location.hash.replace(/^#\/?/, '');
  const [name = '', ...rest] = raw.split('/');
  let arg = rest.join('/');
  try {
    arg = decodeURIComponent(arg);
  } catch {
    // keep as is
  }
  setActiveNav(name);
  const page = el('div', { class: 'page' });
  replace(main, page);
  window.scrollTo(0, 0);
  if (!rpc) {
    append(page, el('div', { class: 'notice warn' }, 'No RPC endpoint: open this page with ?rpc=http://host:port, or set one with “change” above.'));
    return;
  }
  const ctx = makeCtx(rpc, gen);
  let p: Promise<void>;
  switch (name) {
    case '':
      document.title = 'Palisade explorer';
      p = renderDashboard(ctx, page);
      break;
    case 'block':
      document.title = `Block ${arg} · Palisade explorer`;
      p = renderBlock(ctx, page, arg);
      break;
    case 'tx':
      document.title = `Transaction ${arg.slice(0, 12)} · Palisade explorer`;
      p = renderTx(ctx, page, arg);
      break;
    case 'account':
      document.title = `Account ${arg.slice(0, 12)} · Palisade explorer`;
      p = renderAccount(ctx, page, arg);
      break;
    case 'validators':
      document.title = 'Validators · Palisade explorer';
      p = renderValidators(ctx, page);
      break;
    case 'status':
      document.title = 'Status · Palisade explorer';
      p = renderStatus(ctx, page);
      break;
    case 'search':
      document.title = 'Search · Palisade explorer';
      p = renderSearch(ctx, page, arg);
      break;
    default:
      append(page, notFound(`There is no page “${raw}”.`));
      return;
  }
  p.catch((e) => {
    if (gen === generation) append(page, errorBox(e));
  });
}

window.addEventListener('hashchange', route);
route();
