// Search: a number is a block; 0x+64 hex is a transaction (native, then
// Ethereum), a block hash, or a native account; 0x+40 hex an EVM account.
import { el, append, replace } from '../dom';
import type { Ctx } from '../ctx';
import { EVM_ADDR_RE, HASH_RE } from '../format';
import { errorBox, loading, notFound } from '../ui';

/** The route a query goes to directly, or a #/search/ route to resolve it. */
export function routeForQuery(q: string): string {
  const s = q.trim();
  if (/^\d+$/.test(s)) return `#/block/${BigInt(s).toString()}`;
  if (EVM_ADDR_RE.test(s)) return `#/account/${s.toLowerCase()}`;
  return `#/search/${encodeURIComponent(s)}`;
}

type Account = { exists?: boolean };

export async function renderSearch(ctx: Ctx, page: HTMLElement, q: string): Promise<void> {
  append(page, el('h1', null, 'Search'));
  const status = loading(`Looking up ${q}…`);
  append(page, status);
  const s = q.trim();
  if (/^\d+$/.test(s) || EVM_ADDR_RE.test(s)) {
    ctx.navigate(routeForQuery(s), true);
    return;
  }
  if (!HASH_RE.test(s)) {
    replace(status, notFound(`“${s}” is not a block height, a 0x-hash (64 hex digits) or an address.`));
    return;
  }
  const h = s.toLowerCase();
  const [tx, eth, block, acct] = await ctx.rpc.batch([
    { method: 'tx_get', params: [h] },
    { method: 'eth_getTransactionByHash', params: [h] },
    { method: 'chain_getBlock', params: [h] },
    { method: 'state_getAccount', params: [h] },
  ]);
  if (!ctx.alive()) return;
  if (tx?.ok && tx.value) return ctx.navigate(`#/tx/${h}`, true);
  if (eth?.ok && eth.value) return ctx.navigate(`#/tx/${h}`, true);
  if (block?.ok && block.value) return ctx.navigate(`#/block/${h}`, true);
  if (acct?.ok && acct.value && (acct.value as Account).exists) return ctx.navigate(`#/account/${h}`, true);
  const errors = [tx, eth, block, acct].filter((r) => r && !r.ok).map((r) => (r && !r.ok ? r.error : null));
  replace(status, notFound(`No transaction, block or account ${h}.`), errors.length ? errorBox(errors[0]) : null);
}
