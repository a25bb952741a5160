// Account page: a native account (0x + 64 hex) and its EVM face, or an EVM
// address (0x + 40 hex); its transactions, newest first, with paging.
import { el, append, replace, type Child } from '../dom';
import type { Ctx } from '../ctx';
import { EVM_ADDR_RE, HASH_RE, accountLink, blockLink, groupDigits, hexByteLength, hexToDec, mono, txLink } from '../format';
import { badge, collapsed, errorBox, kvTable, loading, notFound, section } from '../ui';
import { RpcError } from '../rpc';
import { abiBox } from '../abi';

type Account = { address: string; balance: string; nonce: number; roles: string[]; exists: boolean; evmAddress: string };
type EvmAccount = { address: string; balance: string; nonce: number; codeSize: number; codeHash?: string; roles: string[]; native: string | null };
type Cursor = { height: number; index: number };
type TxPage = { account?: string; transactions: { hash: string; height: number; index: number; kind: 'native' | 'eth' | string }[]; next: Cursor | null; indexedFrom?: number };

function roles(list: string[] | undefined): HTMLElement {
  return el('span', { 'data-testid': 'account-roles', class: 'roles' }, list && list.length ? list.map((r) => badge(r, 'info')) : el('span', { class: 'muted' }, 'none'));
}

export async function renderAccount(ctx: Ctx, page: HTMLElement, id: string): Promise<void> {
  const addr = id.toLowerCase();
  if (HASH_RE.test(addr)) return renderNative(ctx, page, addr);
  if (EVM_ADDR_RE.test(addr)) return renderEvm(ctx, page, addr);
  append(page, el('h1', null, 'Account'), notFound(`“${id}” is not an address (0x and 64 hex digits, or 0x and 40 for an EVM address).`));
}

async function renderNative(ctx: Ctx, page: HTMLElement, addr: string): Promise<void> {
  append(page, el('h1', null, 'Account ', el('span', { class: 'mono wrap' }, addr)));
  const main = el('div', null, loading());
  append(page, main);
  const acct = await ctx.rpc.call<Account>('state_getAccount', [addr]);
  if (!ctx.alive()) return;
  const evmSection = section('EVM face', loading());
  const txSection = section('Transactions', loading());
  replace(
    main,
    section(
      'Overview',
      acct.exists ? null : el('div', { class: 'notice warn', 'data-testid': 'account-missing' }, 'This account does not exist on chain (it reads as zero).'),
      kvTable([
        ['Address', mono(acct.address, { full: true })],
        ['Balance', el('span', { 'data-testid': 'account-balance', class: 'mono strong', title: acct.balance }, groupDigits(acct.balance))],
        ['Nonce (next)', String(acct.nonce)],
        ['Roles', roles(acct.roles)],
        ['Exists', acct.exists ? 'yes' : 'no'],
        ['EVM address', acct.evmAddress ? accountLink(acct.evmAddress, true) : '—'],
      ], 'account-overview'),
    ),
    txSection,
    evmSection,
  );
  await Promise.all([
    acct.evmAddress ? evmFace(ctx, evmSection, acct.evmAddress) : Promise.resolve(replace(evmSection, el('h2', null, 'EVM face'), el('p', { class: 'muted' }, 'No EVM address.'))),
    accountTxs(ctx, txSection, addr),
  ]);
}

async function renderEvm(ctx: Ctx, page: HTMLElement, addr: string): Promise<void> {
  append(page, el('h1', null, 'EVM address ', el('span', { class: 'mono wrap' }, addr)));
  const overview = section('Overview', loading());
  const evmSection = section('EVM state', loading());
  const txSection = section('Transactions', loading());
  append(page, overview, txSection, evmSection);
  const evmWork = evmFace(ctx, evmSection, addr);
  let native: string | null = null;
  try {
    const a = await ctx.rpc.call<EvmAccount>('state_getEvmAccount', [addr]);
    if (!ctx.alive()) return;
    native = a.native;
    replace(
      overview,
      el('h2', null, 'Overview'),
      kvTable([
        ['Address', mono(a.address, { full: true })],
        ['Balance', el('span', { 'data-testid': 'account-balance', class: 'mono strong', title: a.balance }, groupDigits(a.balance))],
        ['Nonce', String(a.nonce)],
        ['Code size', `${a.codeSize} bytes${a.codeSize ? ' (a contract)' : ''}`],
        ...(a.codeHash ? ([['Code hash', mono(a.codeHash, { full: true })]] as [string, Child][]) : []),
        ['Roles', roles(a.roles)],
        ['Native account', a.native ? accountLink(a.native, true) : el('span', { class: 'muted' }, 'none (an Ethereum key, or a contract)')],
      ], 'account-overview'),
    );
  } catch (e) {
    if (!ctx.alive()) return;
    replace(overview, el('h2', null, 'Overview'), errorBox(e));
  }
  await Promise.all([evmWork, accountTxs(ctx, txSection, addr, native)]);
}

/** Balance, EVM nonce, code and a storage slot reader for an EVM address. */
async function evmFace(ctx: Ctx, box: HTMLElement, evmAddr: string): Promise<void> {
  const [bal, cnt, code] = await ctx.rpc.batch([
    { method: 'eth_getBalance', params: [evmAddr, 'latest'] },
    { method: 'eth_getTransactionCount', params: [evmAddr, 'latest'] },
    { method: 'eth_getCode', params: [evmAddr, 'latest'] },
  ]);
  if (!ctx.alive()) return;
  const show = (r: typeof bal, f: (v: unknown) => Child): Child => (r?.ok ? f(r.value) : errorBox(r?.error ?? 'no answer'));
  const slotInput = el('input', { type: 'text', placeholder: 'slot: 0, 42 or 0x…', 'aria-label': 'Storage slot', spellcheck: 'false', 'data-testid': 'slot-input' }) as HTMLInputElement;
  const slotOut = el('div', { class: 'mono wrap', 'data-testid': 'slot-value' });
  const lookup = async (): Promise<void> => {
    const raw = slotInput.value.trim();
    let slot: string;
    try {
      if (/^0x[0-9a-fA-F]{1,64}$/.test(raw)) slot = `0x${BigInt(raw).toString(16)}`;
      else if (/^\d+$/.test(raw)) slot = `0x${BigInt(raw).toString(16)}`;
      else throw new Error('a slot is a decimal number or 0x-hex (at most 32 bytes)');
    } catch (e) {
      replace(slotOut, el('span', { class: 'error-text' }, e instanceof Error ? e.message : String(e)));
      return;
    }
    replace(slotOut, 'Reading…');
    try {
      const v = await ctx.rpc.call<string>('eth_getStorageAt', [evmAddr, slot, 'latest']);
      replace(slotOut, el('span', { class: 'muted' }, `slot ${slot}: `), v, el('span', { class: 'muted' }, ` (= ${hexToDec(v)})`));
    } catch (e) {
      replace(slotOut, errorBox(e));
    }
  };
  replace(
    box,
    el('h2', null, 'EVM face ', el('span', { class: 'mono muted small' }, evmAddr)),
    kvTable([
      ['EVM address', accountLink(evmAddr, true)],
      ['Balance (eth_getBalance)', show(bal, (v) => groupDigits(hexToDec(v)))],
      ['EVM nonce (eth_getTransactionCount)', show(cnt, (v) => hexToDec(v))],
      [
        'Code',
        show(code, (v) => {
          const hex = typeof v === 'string' ? v : '0x';
          const n = hexByteLength(hex);
          return n ? el('div', null, collapsed(`${n} bytes`, hex), abiBox(evmAddr, () => undefined)) : el('span', { class: 'muted' }, 'none (not a contract)');
        }),
      ],
      [
        'Storage',
        el(
          'div',
          null,
          el(
            'form',
            {
              class: 'row',
              onsubmit: (ev: Event) => {
                ev.preventDefault();
                void lookup();
              },
            },
            slotInput,
            el('button', { type: 'submit' }, 'Read slot'),
          ),
          slotOut,
        ),
      ],
    ]),
  );
}

async function accountTxs(ctx: Ctx, box: HTMLElement, addr: string, fallback: string | null = null): Promise<void> {
  const body = el('tbody');
  const more = el('div', { class: 'row' });
  const note = el('div');
  const tableEl = el(
    'div',
    { class: 'table-wrap' },
    el('table', { class: 'list', 'data-testid': 'account-txs' }, el('thead', null, el('tr', null, el('th', null, 'Hash'), el('th', null, 'Block'), el('th', { class: 'num' }, 'Index'), el('th', null, 'Kind'))), body),
  );
  let subject = addr;
  let count = 0;
  const load = async (before: Cursor | null): Promise<void> => {
    const opts: { limit: number; before?: Cursor } = { limit: 25 };
    if (before) opts.before = before;
    let res: TxPage;
    try {
      res = await ctx.rpc.call<TxPage>('account_getTransactions', [subject, opts]);
    } catch (e) {
      // An EVM address the method does not take: show its native account's.
      if (fallback && e instanceof RpcError && e.code === -32602 && subject !== fallback) {
        subject = fallback;
        replace(note, el('p', { class: 'muted small' }, 'Transactions of the native account ', accountLink(fallback), '.'));
        return load(before);
      }
      throw e;
    }
    if (!ctx.alive()) return;
    if (!before && typeof res.indexedFrom === 'number' && res.indexedFrom > 1) {
      append(note, el('p', { class: 'muted small' }, `This node indexed transactions from height ${res.indexedFrom}; older ones are not listed.`));
    }
    for (const t of res.transactions ?? []) {
      count++;
      body.appendChild(
        el(
          'tr',
          null,
          el('td', null, txLink(t.hash)),
          el('td', null, blockLink(t.height)),
          el('td', { class: 'num' }, t.index),
          el('td', null, badge(t.kind === 'eth' ? 'ethereum' : t.kind, t.kind === 'eth' ? 'info' : 'muted')),
        ),
      );
    }
    const next = res.next;
    replace(
      more,
      count === 0 ? el('p', { class: 'muted', 'data-testid': 'account-no-txs' }, 'No transactions.') : null,
      next
        ? el(
            'button',
            {
              type: 'button',
              'data-testid': 'older',
              onclick: (ev: Event) => {
                (ev.currentTarget as HTMLButtonElement).disabled = true;
                load(next).catch((e) => ctx.alive() && replace(more, errorBox(e)));
              },
            },
            'Older',
          )
        : count > 0
          ? el('span', { class: 'muted small' }, `${count} transaction(s), no older ones.`)
          : null,
    );
  };
  replace(box, el('h2', null, 'Transactions ', el('span', { class: 'muted small' }, 'newest first')), note, tableEl, more);
  try {
    await load(null);
  } catch (e) {
    if (ctx.alive()) replace(box, el('h2', null, 'Transactions'), errorBox(e));
  }
}
