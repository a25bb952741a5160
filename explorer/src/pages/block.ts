// Block page: header, hash, transactions, and the commit certificate that
// committed the block joined with the validator set of its height.
import { el, append, replace } from '../dom';
import type { Ctx } from '../ctx';
import { HASH_RE, accountLink, blockLink, hexByteLength, mono, txLink, utc } from '../format';
import { badge, errorBox, kvTable, loading, notFound, section, table } from '../ui';

type SignedTx = { tx: { chain_id: string; nonce: number; signer: string; action: { type: string } & Record<string, unknown> }; signature: string };
type Commit = { height: number; round: number; block_hash: string; signatures: { validator: string; signature: string }[] };
type Block = { header: Record<string, unknown> & { height: number; time: number; proposer: string }; txs: SignedTx[]; eth_txs: string[]; last_commit: Commit | null };
type BlockRes = { hash: string; block: Block } | null;
type ValSet = { height: number; hash: string; totalPower: number; validators: { publicKey: string; power: number }[] };
type Receipt = { success: boolean; code: number; error: string } | null;

const PAGE = 100;
const REFUSED = 'Execution refused it: it is in the block but not committed (it used no nonce and changed nothing; tx_getReceipt has no receipt for it).';

export async function renderBlock(ctx: Ctx, page: HTMLElement, id: string): Promise<void> {
  let param: number | string;
  if (/^\d+$/.test(id)) param = Number(id);
  else if (HASH_RE.test(id)) param = id.toLowerCase();
  else {
    append(page, el('h1', null, 'Block'), notFound(`“${id}” is neither a height nor a block hash.`));
    return;
  }
  append(page, el('h1', null, 'Block ', el('span', { class: 'mono' }, typeof param === 'number' ? `#${param}` : param)));
  const status = loading();
  append(page, status);
  const res = await ctx.rpc.call<BlockRes>('chain_getBlock', [param]);
  if (!ctx.alive()) return;
  if (!res) {
    const latest = ctx.latest();
    const why = param === 0 ? ' (height 0 is the genesis state; blocks start at 1)' : latest !== null ? ` (latest is ${latest})` : '';
    replace(status, notFound(typeof param === 'number' ? `There is no block at height ${param}${why}.` : `There is no block with hash ${param}.`));
    return;
  }
  status.remove();
  const { hash, block } = res;
  const height = block.header.height;
  page.querySelector('h1')!.replaceChildren(document.createTextNode(`Block #${height}`));

  // Navigation
  append(
    page,
    el('div', { class: 'pager' }, height > 1 ? blockLink(height - 1, `← #${height - 1}`) : null, ' ', blockLink(height + 1, `#${height + 1} →`)),
  );

  // Header
  const h = block.header;
  const rows: [string, ReturnType<typeof el> | string][] = [['Block hash', mono(hash, { full: true })]];
  for (const [k, v] of Object.entries(h)) {
    let cell: HTMLElement | string;
    if (k === 'time') cell = el('span', null, utc(v), el('span', { class: 'muted' }, ` (${String(v)})`));
    else if (k === 'last_block_hash' && typeof v === 'string') cell = height > 1 ? el('a', { href: `#/block/${v}`, class: 'mono', title: v }, v) : mono(v, { full: true });
    else if (k === 'proposer' && typeof v === 'string') cell = mono(v, { full: true });
    else if (typeof v === 'string' && v.startsWith('0x')) cell = mono(v, { full: true });
    else cell = typeof v === 'object' ? JSON.stringify(v) : String(v);
    rows.push([k, cell]);
  }
  append(page, section('Header', kvTable(rows, 'block-header')));

  // Transactions (native first, then Ethereum: the order of chain_getBlockTxHashes)
  const txSection = section(`Transactions (${block.txs.length + block.eth_txs.length})`, loading());
  append(page, txSection);

  // Commit
  const commitSection = section('Commit', loading());
  append(page, commitSection);

  const txWork = renderTxs(ctx, txSection, height, block).catch((e) => {
    if (ctx.alive()) replace(txSection, el('h2', null, 'Transactions'), errorBox(e));
  });
  const commitWork = renderCommit(ctx, commitSection, height, hash).catch((e) => {
    if (ctx.alive()) replace(commitSection, el('h2', null, 'Commit'), errorBox(e));
  });
  await Promise.all([txWork, commitWork]);
}

async function renderTxs(ctx: Ctx, box: HTMLElement, height: number, block: Block): Promise<void> {
  const total = block.txs.length + block.eth_txs.length;
  let title = el('h2', null, `Transactions (${total})`);
  if (total === 0) {
    replace(box, title, el('p', { class: 'muted' }, 'No transactions.'));
    return;
  }
  const hashes = await ctx.rpc.call<{ txHashes: string[]; refused?: number[] } | null>('chain_getBlockTxHashes', [height]);
  if (!ctx.alive()) return;
  const list = hashes?.txHashes ?? [];
  // Positions in `list` of the transactions execution refused.
  const refused = new Set(hashes?.refused ?? []);
  if (refused.size) title = el('h2', null, `Transactions (${total}, ${refused.size} refused)`);
  const body = el('tbody');
  const more = el('div');
  replace(
    box,
    title,
    el(
      'div',
      { class: 'table-wrap' },
      el('table', { class: 'list', 'data-testid': 'block-txs' }, el('thead', null, el('tr', null, ['#', 'Hash', 'Kind', 'From', 'Action', 'Result'].map((t) => el('th', null, t)))), body),
    ),
    more,
  );

  let shown = 0;
  async function showMore(): Promise<void> {
    const from = shown;
    const to = Math.min(total, shown + PAGE);
    shown = to;
    const rows: { tr: HTMLElement; result: HTMLElement; hash: string | undefined; refused: boolean }[] = [];
    for (let i = from; i < to; i++) {
      const hash = list[i];
      const result = el('td', null, refused.has(i) ? el('span', { title: REFUSED, 'data-testid': 'tx-refused' }, badge('refused', 'fail')) : '');
      let tr: HTMLElement;
      if (i < block.txs.length) {
        const t = block.txs[i]!;
        tr = el('tr', null, el('td', { class: 'num' }, i), el('td', null, hash ? txLink(hash) : '?'), el('td', null, badge('native', 'muted')), el('td', null, accountLink(t.tx.signer)), el('td', null, t.tx.action.type), result);
      } else {
        const raw = block.eth_txs[i - block.txs.length] ?? '';
        tr = el('tr', null, el('td', { class: 'num' }, i), el('td', null, hash ? txLink(hash) : '?'), el('td', null, badge('ethereum', 'info')), el('td', { class: 'muted' }, '—'), el('td', { class: 'muted' }, `${hexByteLength(raw)} bytes`), result);
      }
      body.appendChild(tr);
      rows.push({ tr, result, hash, refused: refused.has(i) });
    }
    replace(more, shown < total ? el('button', { type: 'button', onclick: () => void showMore() }, `Show ${Math.min(PAGE, total - shown)} more`) : null);
    // A refused transaction may be committed later, in another block:
    // its receipt would describe that block, not this one.
    const withHash = rows.filter((r) => r.hash && !r.refused);
    const receipts = await ctx.rpc.batch(withHash.map((r) => ({ method: 'tx_getReceipt', params: [r.hash] })));
    if (!ctx.alive()) return;
    receipts.forEach((rr, k) => {
      const cell = withHash[k]!.result;
      if (rr.ok && rr.value) {
        const rec = rr.value as NonNullable<Receipt>;
        replace(cell, rec.success ? badge('success', 'ok') : el('span', { title: rec.error }, badge(`failed (${rec.code})`, 'fail')));
      } else if (!rr.ok) replace(cell, el('span', { class: 'muted', title: rr.error.message }, '?'));
    });
  }
  await showMore();
}

async function renderCommit(ctx: Ctx, box: HTMLElement, height: number, hash: string): Promise<void> {
  // The certificate that commits block h is block h+1's last_commit, when
  // h+1 exists; else the node's stored commit for h.
  const [next, stored, vs] = await ctx.rpc.batch([
    { method: 'chain_getBlock', params: [height + 1] },
    { method: 'chain_getCommit', params: [height] },
    { method: 'validator_getSet', params: [height] },
  ]);
  if (!ctx.alive()) return;
  let commit: Commit | null = null;
  let source = '';
  const nb = next?.ok ? (next.value as BlockRes) : null;
  if (nb && nb.block.last_commit) {
    commit = nb.block.last_commit;
    source = `from block #${height + 1}'s last_commit`;
  } else if (stored?.ok && stored.value) {
    commit = (stored.value as { commit: Commit }).commit;
    source = 'from chain_getCommit';
  }
  const title = el('h2', null, 'Commit signatures');
  if (!commit) {
    replace(box, title, el('p', { class: 'muted' }, 'No commit certificate is available for this block yet.'), stored && !stored.ok ? errorBox(stored.error) : null);
    return;
  }
  const sigs = new Map(commit.signatures.map((s) => [s.validator.toLowerCase(), s.signature]));
  if (!vs?.ok) {
    replace(
      box,
      title,
      errorBox(vs?.error ?? 'no validator set', 'Validator set'),
      table(['Validator', 'Signature'], commit.signatures.map((s) => el('tr', null, el('td', null, mono(s.validator)), el('td', null, mono(s.signature))))),
    );
    return;
  }
  const set = vs.value as ValSet;
  let signedPower = 0;
  const rows = set.validators.map((v) => {
    const sig = sigs.get(v.publicKey.toLowerCase());
    if (sig) signedPower += v.power;
    return el(
      'tr',
      { 'data-testid': 'commit-row', 'data-key': v.publicKey, class: sig ? '' : 'missing' },
      el('td', null, mono(v.publicKey)),
      el('td', { class: 'num' }, v.power),
      el('td', null, sig ? badge('signed', 'ok') : badge('missing', 'fail')),
      el('td', null, sig ? mono(sig) : '—'),
    );
  });
  const known = new Set(set.validators.map((v) => v.publicKey.toLowerCase()));
  const strangers = commit.signatures.filter((s) => !known.has(s.validator.toLowerCase()));
  const pct = set.totalPower ? (signedPower / set.totalPower) * 100 : 0;
  const quorum = signedPower * 3 > set.totalPower * 2;
  const hashMatches = commit.block_hash.toLowerCase() === hash.toLowerCase();
  replace(
    box,
    title,
    kvTable([
      ['Signed power', el('span', { 'data-testid': 'signed-power' }, `${signedPower} / ${set.totalPower} (${pct.toFixed(1)} %) `, quorum ? badge('> 2/3', 'ok') : badge('below 2/3', 'fail'))],
      ['Signatures', `${commit.signatures.length} of ${set.validators.length} validators`],
      ['Round', String(commit.round)],
      ['Block hash', el('span', null, mono(commit.block_hash), ' ', hashMatches ? badge('matches', 'ok') : badge('differs', 'fail'))],
      ['Source', source],
      ['Validator set', el('span', null, mono(set.hash), ` for height ${set.height}`)],
    ]),
    table(['Validator', 'Power', 'Vote', 'Signature'], rows, { testid: 'commit-signatures' }),
    strangers.length
      ? el('div', { class: 'notice warn' }, `${strangers.length} signature(s) from keys outside the set: `, strangers.map((s) => mono(s.validator)))
      : null,
  );
}
