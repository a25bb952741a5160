// Status: system_status, system_health, mempool_status and rpc_methods.
import { el, append, replace, type Child } from '../dom';
import type { Ctx } from '../ctx';
import { bytesHuman, groupDigits, mono, utc } from '../format';
import { badge, errorBox, kvTable, section } from '../ui';

const EXPLORER_METHODS = [
  'chain_getBlock',
  'chain_getBlockTxHashes',
  'chain_getCommit',
  'chain_getHeight',
  'chain_subscribeNewHeads',
  'tx_get',
  'tx_getReceipt',
  'state_getAccount',
  'state_getEvmAccount',
  'account_getTransactions',
  'validator_getSet',
  'validator_getActivity',
  'system_status',
  'system_health',
  'mempool_status',
  'eth_getTransactionByHash',
  'eth_getTransactionReceipt',
  'eth_getBalance',
  'eth_getTransactionCount',
  'eth_getCode',
  'eth_getStorageAt',
];

function objectRows(o: Record<string, unknown>): [string, Child][] {
  return Object.entries(o).map(([k, v]) => {
    if (v === null) return [k, el('span', { class: 'muted' }, 'null')];
    if (typeof v === 'boolean') return [k, v ? badge('true', k === 'syncing' ? 'warn' : 'ok') : badge('false', k === 'ok' ? 'fail' : 'muted')];
    if (k === 'latestBlockTime' && typeof v === 'number') return [k, `${utc(v)} (${v})`];
    if ((k === 'bytes' || k === 'maxBytes') && typeof v === 'number') return [k, `${groupDigits(String(v))} (${bytesHuman(v)})`];
    if (typeof v === 'string' && v.startsWith('0x')) return [k, mono(v, { full: true })];
    if (Array.isArray(v)) return [k, v.length ? el('ul', null, v.map((x) => el('li', null, typeof x === 'string' ? x : JSON.stringify(x)))) : el('span', { class: 'muted' }, 'none')];
    if (typeof v === 'object') return [k, el('span', { class: 'mono wrap' }, JSON.stringify(v))];
    return [k, String(v)];
  });
}

export async function renderStatus(ctx: Ctx, page: HTMLElement): Promise<void> {
  const st = section('system_status');
  const he = section('system_health');
  const mp = section('mempool_status');
  const me = section('rpc_methods');
  append(page, el('h1', null, 'Node status ', el('span', { class: 'muted small mono' }, ctx.rpc.url)), el('div', { class: 'grid2' }, st, he, mp, me));
  const [s, h, m, r] = await ctx.rpc.batch([
    { method: 'system_status', params: [] },
    { method: 'system_health', params: [] },
    { method: 'mempool_status', params: [] },
    { method: 'rpc_methods', params: [] },
  ]);
  if (!ctx.alive()) return;
  const fill = (box: HTMLElement, title: string, res: typeof s, testid: string): void => {
    if (res?.ok && res.value && typeof res.value === 'object') replace(box, el('h2', null, title), kvTable(objectRows(res.value as Record<string, unknown>), testid));
    else replace(box, el('h2', null, title), errorBox(res && !res.ok ? res.error : 'no answer'));
  };
  fill(st, 'system_status', s, 'system-status');
  fill(he, 'system_health', h, 'system-health');
  fill(mp, 'mempool_status', m, 'mempool-status');
  if (r?.ok) {
    const methods = ((r.value as { methods?: string[] }).methods ?? []).slice().sort();
    const have = new Set(methods);
    const missing = EXPLORER_METHODS.filter((x) => !have.has(x));
    replace(
      me,
      el('h2', null, `rpc_methods (${methods.length})`),
      missing.length ? el('div', { class: 'notice warn' }, 'Methods this explorer uses that the node lacks: ', missing.join(', '), '.') : el('p', { class: 'muted' }, 'The node has every method this explorer uses.'),
      el('ul', { class: 'methods mono', 'data-testid': 'rpc-methods' }, methods.map((x) => el('li', null, x))),
    );
  } else replace(me, el('h2', null, 'rpc_methods'), errorBox(r && !r.ok ? r.error : 'no answer'));
}
