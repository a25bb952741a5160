// Dashboard: latest blocks and transactions (live from the new-heads
// subscription), node status, mempool and validator set (refreshed at most
// every 5 s while the tab is visible).
import { el, append, replace } from '../dom';
import type { Ctx } from '../ctx';
import type { Head } from '../rpc';
import { age, blockLink, clock, groupDigits, mono, txLink, bytesHuman } from '../format';
import { badge, errorBox, kvTable, loading, section } from '../ui';

const MAX_BLOCKS = 15;
const MAX_TXS = 20;
const TX_SCAN_BLOCKS = 200;

type Header = { height: number; time: number; proposer: string };
type BlockRes = { hash: string; block: { header: Header; txs: unknown[]; eth_txs: unknown[] } } | null;
type TxHashes = { hash: string; height: number; txHashes: string[]; refused?: number[] } | null;
type Status = Record<string, unknown> & { latestHeight?: number; peers?: number; syncing?: boolean; moniker?: string; version?: string; chainId?: string; validator?: string | null; mempoolTxs?: number };
type Mempool = { txs: number; bytes: number; maxTxs: number; maxBytes: number };
type ValSet = { height: number; totalPower: number; validators: { publicKey: string; power: number }[] };

type BlockRow = { height: number; hash: string; time: number; proposer: string; txCount: number };
type TxRow = { hash: string; height: number; index: number };

export async function renderDashboard(ctx: Ctx, page: HTMLElement): Promise<void> {
  const blocksBody = el('tbody');
  const txsBody = el('tbody');
  const txsEmpty = el('p', { class: 'muted' }, 'Looking for recent transactions…');
  const txsTable = el('div', { class: 'table-wrap', hidden: true }, el('table', { class: 'list', 'data-testid': 'latest-txs' }, el('thead', null, el('tr', null, el('th', null, 'Hash'), el('th', null, 'Block'), el('th', { class: 'num' }, 'Index'))), txsBody));
  const statusBox = el('div', null, loading());
  const mempoolBox = el('div', null, loading());
  const valBox = el('div', null, loading());

  append(
    page,
    el(
      'div',
      { class: 'grid2' },
      section(
        ['Latest blocks ', el('span', { class: 'muted small' }, 'live')],
        el('div', { class: 'table-wrap' }, el('table', { class: 'list', 'data-testid': 'latest-blocks' }, el('thead', null, el('tr', null, el('th', null, 'Height'), el('th', null, 'Time (UTC)'), el('th', null, 'Proposer'), el('th', { class: 'num' }, 'Txs'))), blocksBody)),
      ),
      section(
        'Latest transactions',
        txsTable,
        txsEmpty,
      ),
    ),
    el('div', { class: 'grid3' }, section('Node', statusBox), section('Mempool', mempoolBox), section('Validator set', valBox)),
  );

  const blocks: BlockRow[] = [];
  const txs: TxRow[] = [];
  let newest = 0;

  function blockRow(b: BlockRow): HTMLElement {
    return el(
      'tr',
      { 'data-testid': 'block-row', 'data-height': b.height },
      el('td', null, blockLink(b.height)),
      el('td', { title: age(b.time) }, clock(b.time)),
      el('td', null, mono(b.proposer)),
      el('td', { class: b.txCount ? 'num strong' : 'num muted' }, b.txCount),
    );
  }

  function drawBlocks(): void {
    replace(blocksBody, blocks.map(blockRow));
  }

  function drawTxs(): void {
    replace(
      txsBody,
      txs.map((t) => el('tr', null, el('td', null, txLink(t.hash)), el('td', null, blockLink(t.height)), el('td', { class: 'num' }, t.index))),
    );
    txsEmpty.hidden = txs.length > 0;
    txsTable.hidden = txs.length === 0;
  }

  function addBlock(b: BlockRow): void {
    if (blocks.some((x) => x.height === b.height)) return;
    blocks.push(b);
    blocks.sort((a, c) => c.height - a.height);
    blocks.length = Math.min(blocks.length, MAX_BLOCKS);
  }

  // Committed transactions only: one execution refused is in its block but
  // not committed, so its link would open a transaction the node calls
  // unknown (the block page marks it instead).
  function addTxs(height: number, hashes: string[], refused: number[]): void {
    hashes.forEach((hash, index) => {
      if (!refused.includes(index) && !txs.some((t) => t.hash === hash)) txs.push({ hash, height, index });
    });
    txs.sort((a, b) => b.height - a.height || b.index - a.index);
    txs.length = Math.min(txs.length, MAX_TXS);
  }

  async function fetchTxHashes(heights: number[]): Promise<void> {
    if (!heights.length) return;
    const res = await ctx.rpc.batch(heights.map((h) => ({ method: 'chain_getBlockTxHashes', params: [h] })));
    if (!ctx.alive()) return;
    res.forEach((r) => {
      if (r.ok && r.value) {
        const v = r.value as NonNullable<TxHashes>;
        addTxs(v.height, v.txHashes, v.refused ?? []);
      }
    });
  }

  async function fetchBlocks(heights: number[]): Promise<void> {
    if (!heights.length) return;
    const res = await ctx.rpc.batch(heights.map((h) => ({ method: 'chain_getBlock', params: [h] })));
    if (!ctx.alive()) return;
    const withTxs: number[] = [];
    for (const r of res) {
      if (!r.ok || !r.value) continue;
      const v = r.value as NonNullable<BlockRes>;
      const h = v.block.header;
      const count = (v.block.txs?.length ?? 0) + (v.block.eth_txs?.length ?? 0);
      addBlock({ height: h.height, hash: v.hash, time: h.time, proposer: h.proposer, txCount: count });
      if (count) withTxs.push(h.height);
      newest = Math.max(newest, h.height);
    }
    drawBlocks();
    await fetchTxHashes(withTxs);
    drawTxs();
  }

  // Heads arriving while the first load runs are queued, then applied.
  let ready = false;
  const queued: Head[] = [];

  async function onHead(head: Head): Promise<void> {
    const h = head.header.height;
    if (h <= newest && blocks.some((b) => b.height === h)) return;
    // A gap (reconnect, or `missed` heads): fetch the blocks in between.
    const gapFrom = Math.max(newest + 1, h - MAX_BLOCKS + 1);
    const gap: number[] = [];
    if (newest > 0) for (let x = gapFrom; x < h; x++) gap.push(x);
    newest = Math.max(newest, h);
    addBlock({ height: h, hash: head.hash, time: head.header.time, proposer: head.header.proposer, txCount: head.txCount });
    drawBlocks();
    if (gap.length) await fetchBlocks(gap);
    if (head.txCount > 0) {
      await fetchTxHashes([h]);
      drawTxs();
    }
  }

  ctx.onHead((head) => {
    if (!ready) queued.push(head);
    else onHead(head).catch(() => undefined);
  });

  // Node status, mempool and validator set: now, then every 5 s while visible.
  async function refreshSide(): Promise<void> {
    const [st, mp, vs] = await ctx.rpc.batch([
      { method: 'system_status', params: [] },
      { method: 'mempool_status', params: [] },
      { method: 'validator_getSet', params: [] },
    ]);
    if (!ctx.alive()) return;
    if (st?.ok) {
      const s = st.value as Status;
      replace(
        statusBox,
        kvTable([
          ['Chain', String(s.chainId ?? '')],
          ['Height', String(s.latestHeight ?? '')],
          ['Moniker', String(s.moniker ?? '')],
          ['Version', String(s.version ?? '')],
          ['Peers', String(s.peers ?? '')],
          ['Syncing', s.syncing ? badge('syncing', 'warn') : badge('no', 'ok')],
          ['Validator', s.validator ? mono(s.validator) : el('span', { class: 'muted' }, 'observer')],
        ], 'node-status'),
      );
    } else if (st) replace(statusBox, errorBox(st.error));
    if (mp?.ok) {
      const m = mp.value as Mempool;
      const pct = m.maxTxs ? Math.min(100, (m.txs / m.maxTxs) * 100) : 0;
      replace(
        mempoolBox,
        kvTable([
          ['Transactions', `${groupDigits(String(m.txs))} / ${groupDigits(String(m.maxTxs))}`],
          ['Bytes', `${bytesHuman(m.bytes)} / ${bytesHuman(m.maxBytes)}`],
          ['Fill', `${pct.toFixed(pct > 0 && pct < 1 ? 2 : 0)} %`],
        ], 'mempool'),
      );
    } else if (mp) replace(mempoolBox, errorBox(mp.error));
    if (vs?.ok) {
      const v = vs.value as ValSet;
      replace(
        valBox,
        kvTable([
          ['Validators', String(v.validators.length)],
          ['Total power', String(v.totalPower)],
          ['For height', String(v.height)],
        ]),
        el('p', null, el('a', { href: '#/validators' }, 'Activity and missed blocks →')),
      );
    } else if (vs) replace(valBox, errorBox(vs.error));
  }

  const side = refreshSide().catch((e) => {
    if (ctx.alive()) replace(statusBox, errorBox(e));
  });
  ctx.every(5000, refreshSide);

  // First load: the newest MAX_BLOCKS blocks.
  let top: number;
  try {
    top = await ctx.rpc.call<number>('chain_getHeight');
  } catch (e) {
    replace(blocksBody, el('tr', null, el('td', { colspan: 4 }, errorBox(e))));
    ready = true;
    return;
  }
  if (!ctx.alive()) return;
  const heights: number[] = [];
  for (let h = top; h >= 1 && heights.length < MAX_BLOCKS; h--) heights.push(h);
  try {
    await fetchBlocks(heights);
  } catch (e) {
    if (ctx.alive()) append(page, errorBox(e));
  }
  ready = true;
  for (const head of queued.splice(0)) await onHead(head).catch(() => undefined);
  if (!ctx.alive()) return;

  // Few transactions in the last blocks: look further back once (hashes only).
  if (txs.length < MAX_TXS) {
    const lowest = heights[heights.length - 1] ?? 1;
    const older: number[] = [];
    for (let h = lowest - 1; h >= 1 && older.length < TX_SCAN_BLOCKS; h--) older.push(h);
    try {
      await fetchTxHashes(older);
    } catch {
      // optional
    }
    if (!ctx.alive()) return;
    drawTxs();
  }
  txsEmpty.textContent = 'No transactions in recent blocks.';
  txsEmpty.hidden = txs.length > 0;
  await side;
}
