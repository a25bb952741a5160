// Transaction page: a native transaction (tx_get + tx_getReceipt) or an
// Ethereum one (eth_getTransactionByHash + eth_getTransactionReceipt, and
// tx_getReceipt for the revert reason when the node answers it).
import { el, append, replace, type Child } from '../dom';
import type { Ctx } from '../ctx';
import { EVM_ADDR_RE, HASH_RE, HEX_RE, accountLink, blockLink, groupDigits, hexByteLength, hexToDec, hexToNumber, hexToText, mono } from '../format';
import { badge, collapsed, errorBox, kvTable, loading, notFound, section } from '../ui';
import { abiBox, abiFor, decodeCall, decodeLog, decodedView } from '../abi';

type Action = { type: string } & Record<string, unknown>;
type NativeTx = { hash: string; height: number | null; index: number | null; tx: { tx: { chain_id: string; nonce: number; signer: string; action: Action }; signature: string } };
type Log = { address: string; topics: string[]; data: string; logIndex?: string };
type Receipt = {
  txHash: string;
  height: number;
  index: number;
  success: boolean;
  code: number;
  error: string;
  events: { kind: string; attributes: [string, string][] }[];
  evm?: { gasUsed: number; contractAddress: string | null; logs: Log[]; output: string };
};
type EthTx = Record<string, unknown> & { hash: string; from: string; to: string | null; input: string; value: string; nonce: string; blockNumber: string | null; transactionIndex: string | null; gas: string; type?: string; chainId?: string };
type EthReceipt = Record<string, unknown> & { status: string; gasUsed: string; contractAddress: string | null; logs: Log[]; blockNumber: string };

const HEX_FIELDS = new Set(['namespace', 'key', 'value', 'data', 'code', 'input', 'output']);
const AMOUNT_FIELDS = new Set(['amount', 'balance']);

/** A hex value with its size, collapsed when long, plus its UTF-8 text when it is text. */
export function hexView(v: string): HTMLElement {
  const n = hexByteLength(v);
  const text = hexToText(v);
  const raw = v.length > 140 ? collapsed(`${n} bytes (hex)`, v) : el('span', { class: 'mono wrap' }, v);
  return el(
    'div',
    { class: 'hexview' },
    text !== null ? el('div', { class: 'as-text' }, el('span', { class: 'muted small' }, 'text: '), el('span', { class: 'text-value', 'data-testid': 'decoded-text' }, text)) : null,
    raw,
  );
}

/** One value of chain data, rendered by its field name and shape. */
export function valueCell(name: string, v: unknown): Child {
  if (v === null || v === undefined) return el('span', { class: 'muted' }, 'null');
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return el('span', { class: AMOUNT_FIELDS.has(name) ? 'mono strong' : 'mono', title: v }, groupDigits(v));
    if ((HASH_RE.test(v) || EVM_ADDR_RE.test(v)) && !HEX_FIELDS.has(name)) {
      if (['to', 'account', 'signer', 'from', 'address'].includes(name)) return accountLink(v, true);
      return mono(v, { full: true });
    }
    if (HEX_RE.test(v) && v.length > 2) return hexView(v);
    return el('span', { class: 'text-value' }, v);
  }
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'object' && !Array.isArray(v)) {
    return kvTable(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, valueCell(k, x)]));
  }
  return el('span', { class: 'mono wrap' }, JSON.stringify(v));
}

function statusView(kind: 'success' | 'failed' | 'pending', extra?: string): HTMLElement {
  const text = kind === 'success' ? 'Success' : kind === 'failed' ? 'Failed' : 'Pending';
  return el('div', { class: `tx-status ${kind}`, 'data-testid': 'tx-status', 'data-state': kind }, text, extra ? el('span', { class: 'small' }, ` ${extra}`) : null);
}

function failureReason(text: string): HTMLElement {
  return el('div', { class: 'tx-error' }, el('span', { class: 'muted' }, 'Reason: '), el('span', { 'data-testid': 'tx-error' }, text || '(no reason given)'));
}

function eventsView(events: Receipt['events']): HTMLElement {
  if (!events.length) return el('p', { class: 'muted' }, 'No events.');
  return el(
    'div',
    { class: 'table-wrap' },
    el(
      'table',
      { class: 'list events', 'data-testid': 'events' },
      el('thead', null, el('tr', null, el('th', null, 'Kind'), el('th', null, 'Attributes'))),
      el(
        'tbody',
        null,
        events.map((ev) =>
          el(
            'tr',
            null,
            el('td', null, el('strong', null, ev.kind)),
            el('td', null, kvTable((ev.attributes ?? []).map(([k, v]) => [String(k), valueCell(String(k), v)]))),
          ),
        ),
      ),
    ),
  );
}

function logsView(logs: Log[], rerender: () => void): HTMLElement {
  if (!logs.length) return el('p', { class: 'muted' }, 'No logs.');
  const seen = new Set<string>();
  const boxes: HTMLElement[] = [];
  const items = logs.map((log, i) => {
    const abi = abiFor(log.address);
    const addr = log.address.toLowerCase();
    if (!seen.has(addr) && !abi) {
      seen.add(addr);
      boxes.push(abiBox(addr, rerender));
    }
    return el(
      'li',
      { class: 'log' },
      kvTable([
        ['Log', String(log.logIndex !== undefined ? hexToDec(log.logIndex) : i)],
        ['Address', accountLink(log.address, true)],
        ...(abi ? ([['Decoded', decodedView(decodeLog(abi, log.topics, log.data), 'event')]] as [string, Child][]) : []),
        ['Topics', log.topics.length ? el('ol', { class: 'mono topics' }, log.topics.map((t) => el('li', null, t))) : el('span', { class: 'muted' }, 'none')],
        ['Data', log.data && log.data !== '0x' ? hexView(log.data) : el('span', { class: 'muted' }, 'empty')],
      ]),
    );
  });
  return el('div', null, el('ol', { class: 'logs', 'data-testid': 'logs' }, items), boxes);
}

function callView(to: string | null, data: string, rerender: () => void): Child[] {
  if (!to || !data || data === '0x') return [];
  const abi = abiFor(to);
  return [abi ? decodedView(decodeCall(abi, data), 'function') : null, abiBox(to.toLowerCase(), rerender)];
}

export async function renderTx(ctx: Ctx, page: HTMLElement, id: string): Promise<void> {
  append(page, el('h1', null, 'Transaction'));
  if (!HASH_RE.test(id)) {
    append(page, notFound(`“${id}” is not a transaction hash (0x and 64 hex digits).`));
    return;
  }
  const hash = id.toLowerCase();
  const body = el('div', null, loading());
  append(page, body);
  let settled = false;

  const draw = async (): Promise<void> => {
    const [tx, rc, etx, erc] = await ctx.rpc.batch([
      { method: 'tx_get', params: [hash] },
      { method: 'tx_getReceipt', params: [hash] },
      { method: 'eth_getTransactionByHash', params: [hash] },
      { method: 'eth_getTransactionReceipt', params: [hash] },
    ]);
    if (!ctx.alive()) return;
    const redraw = (): void => {
      draw().catch((e) => ctx.alive() && replace(body, errorBox(e)));
    };
    const native = tx?.ok ? (tx.value as NativeTx | null) : null;
    const receipt = rc?.ok ? (rc.value as Receipt | null) : null;
    const eth = etx?.ok ? (etx.value as EthTx | null) : null;
    const ethReceipt = erc?.ok ? (erc.value as EthReceipt | null) : null;
    if (native) {
      settled = !!receipt;
      replace(body, ...nativeView(native, receipt, eth, redraw));
    } else if (eth) {
      settled = !!ethReceipt;
      replace(body, ...ethView(eth, ethReceipt, receipt, redraw));
    } else {
      settled = true;
      const errs = [tx, rc, etx, erc].flatMap((r) => (r && !r.ok ? [r.error] : []));
      replace(body, notFound(`No transaction ${hash} on this node (committed or pending).`), errs.length ? errorBox(errs[0]) : null);
    }
  };
  await draw();
  // A pending transaction: look again when blocks come in, until it commits.
  let busy = false;
  ctx.onHead(() => {
    if (settled || busy) return;
    busy = true;
    draw()
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  });
}

function nativeView(t: NativeTx, r: Receipt | null, eth: EthTx | null, rerender: () => void): Child[] {
  const inner = t.tx.tx;
  const action = inner.action;
  const pending = t.height === null;
  const summary = section(
    'Overview',
    kvTable([
      ['Hash', mono(t.hash, { full: true })],
      ['Status', pending ? statusView('pending', '(in the mempool)') : r ? statusView(r.success ? 'success' : 'failed') : el('span', { class: 'muted' }, 'committed; no receipt')],
      ['Block', t.height !== null ? blockLink(t.height) : el('span', { class: 'muted' }, 'pending')],
      ['Index in block', t.index !== null ? String(t.index) : '—'],
      ['Kind', badge('native', 'muted')],
      ['Signer', accountLink(inner.signer, true)],
      ['Nonce', String(inner.nonce)],
      ['Chain id', inner.chain_id],
      ['Signature', mono(t.tx.signature)],
    ], 'tx-overview'),
  );
  const actionRows: [string, Child][] = [['type', el('strong', null, action.type)]];
  for (const [k, v] of Object.entries(action)) if (k !== 'type') actionRows.push([k, valueCell(k, v)]);
  const actionSection = section(['Action ', el('span', { class: 'muted' }, action.type)], kvTable(actionRows, 'tx-action'));
  if (action.type === 'evm_call' && typeof action.to === 'string' && typeof action.data === 'string') {
    append(actionSection, ...callView(action.to, action.data, rerender));
  }
  const parts: Child[] = [summary, actionSection];
  if (r) parts.push(receiptView(r, rerender));
  else if (!pending) parts.push(section('Receipt', el('p', { class: 'muted' }, 'The node has no receipt for this transaction.')));
  if (eth && eth.from) parts.push(el('p', { class: 'muted small' }, 'In the Ethereum view this call is sent by the signer\'s EVM address ', accountLink(eth.from), '.'));
  return parts;
}

function receiptView(r: Receipt, rerender: () => void): HTMLElement {
  const rows: [string, Child][] = [
    ['Result', statusView(r.success ? 'success' : 'failed', r.success ? undefined : `(code ${r.code})`)],
  ];
  if (!r.success) rows.push(['Failure reason', failureReason(r.error)]);
  rows.push(['Code', String(r.code)], ['Block', blockLink(r.height)], ['Index', String(r.index)]);
  const parts: Child[] = [kvTable(rows), el('h3', null, 'Events'), eventsView(r.events ?? [])];
  if (r.evm) {
    const evm = r.evm;
    parts.push(
      el('h3', null, 'EVM'),
      kvTable([
        ['Gas used', groupDigits(String(evm.gasUsed))],
        // A failed creation's receipt names the address it would have had.
        [r.success ? 'Contract created' : 'Contract address (not created)', evm.contractAddress ? accountLink(evm.contractAddress, true) : el('span', { class: 'muted' }, 'none')],
        ['Output', evm.output && evm.output !== '0x' ? hexView(evm.output) : el('span', { class: 'muted' }, 'empty')],
      ]),
      el('h3', null, 'Logs'),
      logsView(evm.logs ?? [], rerender),
    );
  }
  return el('section', { class: `card receipt ${r.success ? 'ok' : 'fail'}`, 'data-testid': 'receipt' }, el('h2', null, 'Receipt'), ...parts);
}

function ethView(t: EthTx, r: EthReceipt | null, native: Receipt | null, rerender: () => void): Child[] {
  const pending = !t.blockNumber;
  const height = hexToNumber(t.blockNumber);
  const failed = r ? r.status === '0x0' : false;
  const fee = t.maxFeePerGas !== undefined ? ['Max fee per gas', hexToDec(t.maxFeePerGas)] : ['Gas price', hexToDec(t.gasPrice)];
  const summary = section(
    'Overview',
    kvTable([
      ['Hash', mono(t.hash, { full: true })],
      ['Status', pending ? statusView('pending', '(in the mempool)') : r ? statusView(failed ? 'failed' : 'success') : el('span', { class: 'muted' }, 'committed; no receipt')],
      ['Block', height !== null ? blockLink(height) : el('span', { class: 'muted' }, 'pending')],
      ['Index in block', t.transactionIndex ? hexToDec(t.transactionIndex) : '—'],
      ['Kind', el('span', null, badge('ethereum', 'info'), t.type ? ` type ${hexToDec(t.type)}` : '')],
      ['From', accountLink(t.from, true)],
      ['To', t.to ? accountLink(t.to, true) : el('span', { class: 'muted' }, 'contract creation')],
      ['Value (wei)', groupDigits(hexToDec(t.value))],
      ['Nonce', hexToDec(t.nonce)],
      ['Gas limit', groupDigits(hexToDec(t.gas))],
      [fee[0] as string, groupDigits(String(fee[1]))],
      ['Chain id', t.chainId ? hexToDec(t.chainId) : '—'],
      ['Input', t.input && t.input !== '0x' ? hexView(t.input) : el('span', { class: 'muted' }, 'empty')],
    ], 'tx-overview'),
  );
  if (t.to) append(summary, ...callView(t.to, t.input, rerender));
  const parts: Child[] = [summary];
  if (r) {
    const rows: [string, Child][] = [['Result', statusView(failed ? 'failed' : 'success', native && !native.success ? `(code ${native.code})` : undefined)]];
    if (failed) rows.push(['Failure reason', failureReason(native?.error || (native ? '' : 'reverted (this node does not give the reason)'))]);
    rows.push(
      ['Gas used', groupDigits(hexToDec(r.gasUsed))],
      [failed ? 'Contract address (not created)' : 'Contract created', r.contractAddress ? accountLink(r.contractAddress, true) : el('span', { class: 'muted' }, 'none')],
      ['Block', blockLink(hexToNumber(r.blockNumber) ?? 0)],
    );
    if (native?.evm?.output && native.evm.output !== '0x') rows.push(['Output', hexView(native.evm.output)]);
    const receiptEl = el('section', { class: `card receipt ${failed ? 'fail' : 'ok'}`, 'data-testid': 'receipt' }, el('h2', null, 'Receipt'), kvTable(rows));
    if (native && native.events?.length) append(receiptEl, el('h3', null, 'Events'), eventsView(native.events));
    append(receiptEl, el('h3', null, 'Logs'), logsView(r.logs ?? [], rerender));
    parts.push(receiptEl);
  }
  const extra: [string, Child][] = [];
  for (const k of ['accessList', 'r', 's', 'v', 'yParity', 'blockHash'] as const) if (t[k] !== undefined) extra.push([k, el('span', { class: 'mono wrap' }, typeof t[k] === 'string' ? (t[k] as string) : JSON.stringify(t[k]))]);
  parts.push(el('details', { class: 'card' }, el('summary', null, 'Raw fields'), kvTable(extra)));
  return parts;
}
