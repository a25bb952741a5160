// Differential conformance test: the same signed Ethereum transactions sent
// to a Palisade node and to anvil (same hardfork, zero fees) must give the
// same receipts, transactions, return and revert data, and state. It tests
// Palisade's integration of revm (state adapter, gas and fees, receipts,
// RPC), not revm.
//
//   node differential.mjs PALISADE_RPC_URL     (a fresh `palisade dev`)
//
// Starts anvil itself (the locked npm @foundry-rs/anvil-linux-amd64, or
// $ANVIL) on a free port and kills it on every way out. Signs each
// transaction once with ethers (explicit nonce, gas limit, chain id 1337,
// zero fees unless a step says otherwise) and sends the identical raw bytes
// to both nodes with eth_sendRawTransaction: one at a time, each alone in a
// block on both, and once a burst that both put in one block. It compares
//   - the receipts: status, gasUsed, cumulativeGasUsed and logIndex (when
//     both put the transaction at the same index), contractAddress, logs
//     (address, topics, data), logsBloom, from, to, type,
//     effectiveGasPrice;
//   - the transactions as eth_getTransactionByHash returns them;
//   - the balance, nonce and code of every account the test knows of and
//     the storage slots it wrote, at the block of the receipt on each (and
//     later at earlier blocks again);
//   - eth_call results and errors (revert data; a failure that is not a
//     revert only as such), at matching blocks;
//   - eth_getLogs over the test's blocks with each kind of filter;
//   - that both refuse the same inadmissible transactions.
// Block numbers, timestamps, block hashes, prevrandao and the block gas
// limit legitimately differ: no contract output depends on them; env()
// reads them, and the test checks that each agrees with its own chain's
// block. The intended differences (docs/contracts.md, "Conformance with
// Ethereum": roles, refused transaction types) are checked as
// such.
//
// Prints every difference as it is found and exits 1 if there was any; on
// success prints one JSON summary line (the last line of stdout): counts of
// what was compared, and what is reported without being compared (error
// wording, anvil dropping what Palisade refused, the env fields, gas
// estimates). A difference known to be genuine can be tolerated while
// others are looked for: PALISADE_CONFORMANCE_TOLERATE="step/field,..."
// (each a prefix of the printed key, `*` matching anything). The committed
// test tolerates none.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';
import { ethers } from 'ethers';
import { compile } from './compile.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const PALISADE = process.argv[2];
if (!PALISADE) {
  console.error('usage: node differential.mjs PALISADE_RPC_URL');
  process.exit(2);
}
const ANVIL_BIN = process.env.ANVIL || join(here, 'node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil');
const TOLERATE = (process.env.PALISADE_CONFORMANCE_TOLERATE || '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const CHAIN_ID = 1337n;
const MNEMONIC = 'test test test test test test test test test test test junk';

// ---------------------------------------------------------------- anvil --

let anvil = null;
function killAnvil() {
  if (anvil && anvil.exitCode === null && anvil.signalCode === null) {
    try {
      anvil.kill('SIGKILL');
    } catch {}
  }
}
process.on('exit', killAnvil);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAnvil();
    console.error(`differential: ${sig}, anvil stopped`);
    process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 }[sig]));
  });
}
process.on('uncaughtException', (e) => {
  killAnvil();
  console.error('differential: failed:', e?.stack || e);
  process.exit(1);
});
process.on('unhandledRejection', (e) => {
  killAnvil();
  console.error('differential: failed:', e?.stack || e);
  process.exit(1);
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startAnvil() {
  if (!existsSync(ANVIL_BIN)) {
    console.error(`differential: anvil not found at ${ANVIL_BIN} (npm ci in tests/eth, or set ANVIL)`);
    process.exit(3);
  }
  const port = await freePort();
  const args = [
    '--hardfork', 'osaka',
    '--chain-id', String(CHAIN_ID),
    '--base-fee', '0',
    '--gas-price', '0',
    // Palisade caps a transaction at 2^24 gas, as EIP-7825 does; anvil
    // only with this flag.
    '--enable-tx-gas-limit',
    // Its suggested tip is 1 gwei otherwise (eth_gasPrice).
    '--disable-min-priority-fee',
    // anvil alone puts a CREATE2 deployer at 0x4e59...956c.
    '--disable-default-create2-deployer',
    '--port', String(port),
    '--host', '127.0.0.1',
    '--silent',
  ];
  let stderr = '';
  anvil = spawn(ANVIL_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  anvil.stderr.on('data', (d) => (stderr += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (anvil.exitCode !== null) throw new Error(`anvil exited (${anvil.exitCode}): ${stderr}`);
    try {
      const r = await rpc(url, 'eth_chainId', []);
      if (r.result) return url;
    } catch {}
    await sleep(100);
  }
  throw new Error(`anvil did not start: ${stderr}`);
}

// ------------------------------------------------------------------ RPC --

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let rpcId = 0;

async function post(url, body) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  }
}

/** One call: { result } or { error }. */
async function rpc(url, method, params) {
  return post(url, { jsonrpc: '2.0', id: ++rpcId, method, params });
}

/** Many calls, in batches Palisade accepts (rpc.max_batch is 64). */
async function batch(url, calls) {
  const out = [];
  for (let i = 0; i < calls.length; i += 50) {
    const chunk = calls.slice(i, i + 50).map(([method, params]) => ({ jsonrpc: '2.0', id: ++rpcId, method, params }));
    const res = await post(url, chunk);
    if (!Array.isArray(res)) throw new Error(`${url}: batch answered ${JSON.stringify(res).slice(0, 300)}`);
    const byId = new Map(res.map((r) => [r.id, r]));
    for (const c of chunk) out.push(byId.get(c.id));
  }
  return out;
}

// ---------------------------------------------------------- comparison --

const diffs = [];
const tolerated = [];
// How the two word errors that compare equal (code 3 and its data, or a
// failure that is not a revert): reported in the summary.
const errorWording = [];
// Transactions one node refused and the other accepted but never ran.
const dropped = [];
// What each said when both refused a transaction.
const refusals = [];
// How many blocks each node made of each burst of transactions.
const bursts = [];
const counts = { txs: 0, rejected: 0, calls: 0, stateReads: 0, checks: 0 };

/** `t` as a key prefix in which `*` matches anything. */
function globPrefix(t) {
  return new RegExp('^' + t.split('*').map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*'));
}

function show(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Records a difference between palisade's `p` and anvil's `a`. */
function differ(step, field, p, a, note) {
  const key = `${step}/${field}`;
  const d = { key, palisade: p, anvil: a };
  if (note) d.note = note;
  if (TOLERATE.some((t) => globPrefix(t).test(key))) {
    tolerated.push(d);
    console.log(`tolerated difference ${key}\n  palisade: ${show(p)}\n  anvil:    ${show(a)}`);
    return;
  }
  diffs.push(d);
  console.log(`DIFF ${key}${note ? ` (${note})` : ''}\n  palisade: ${show(p)}\n  anvil:    ${show(a)}`);
}

function check(step, field, p, a, note) {
  counts.checks++;
  if (!same(p, a)) differ(step, field, p, a, note);
}

/** Test's own expectation (a mistake in the test, not a difference). */
function expect(step, what, ok, detail) {
  if (!ok) throw new Error(`${step}: expected ${what}${detail === undefined ? '' : `: ${show(detail)}`}`);
}

const hex = (v) => (v === null || v === undefined ? v : String(v).toLowerCase());
const qty = (v) => (v === null || v === undefined ? v : '0x' + BigInt(v).toString(16));

function normReceipt(r) {
  return {
    transactionHash: hex(r.transactionHash),
    status: qty(r.status),
    gasUsed: qty(r.gasUsed),
    contractAddress: hex(r.contractAddress ?? null),
    from: hex(r.from),
    to: hex(r.to ?? null),
    type: qty(r.type),
    effectiveGasPrice: qty(r.effectiveGasPrice),
    logsBloom: hex(r.logsBloom),
    logs: r.logs.map((l) => ({
      address: hex(l.address),
      topics: l.topics.map(hex),
      data: hex(l.data),
      transactionHash: hex(l.transactionHash),
      removed: l.removed ?? false,
    })),
  };
}

function normTx(t) {
  const o = {
    hash: hex(t.hash),
    from: hex(t.from),
    to: hex(t.to ?? null),
    nonce: qty(t.nonce),
    value: qty(t.value),
    input: hex(t.input),
    gas: qty(t.gas),
    type: qty(t.type),
    chainId: qty(t.chainId),
    r: qty(t.r),
    s: qty(t.s),
    v: qty(t.v),
    gasPrice: qty(t.gasPrice),
  };
  if (t.type !== '0x0') {
    o.yParity = qty(t.yParity ?? t.v);
    o.accessList = (t.accessList || []).map((e) => ({
      address: hex(e.address),
      storageKeys: e.storageKeys.map(hex),
    }));
  }
  if (t.type === '0x2') {
    o.maxFeePerGas = qty(t.maxFeePerGas);
    o.maxPriorityFeePerGas = qty(t.maxPriorityFeePerGas);
  }
  return o;
}

/**
 * An eth_call answer, as compared: the result; or for a revert (error 3)
 * the revert data; or only that it failed otherwise (out of gas, invalid
 * opcode...), which Palisade answers -32000 as geth does and anvil -32603,
 * each with a message of its own (reported, not compared).
 */
function normCall(r) {
  if (!r.error) return { result: hex(r.result) };
  if (r.error.code === 3) return { reverted: hex(r.error.data ?? null) };
  return { failed: true };
}

const ERROR_STRING = '0x08c379a0';
// ---------------------------------------------------------------- state --

let A; // anvil URL
const P = PALISADE;
const accounts = new Map(); // label -> address
const slots = new Map(); // address -> Set of slot numbers (bigint)
// The block of the latest step on each node: state and calls are read there.
const at = { p: 'latest', a: 'latest' };
const history = []; // { step, p, a } blocks of each transaction

function track(label, address, slotList = []) {
  address = ethers.getAddress(address);
  accounts.set(label, address);
  const s = slots.get(address) || new Set();
  for (const x of slotList) s.add(BigInt(x));
  slots.set(address, s);
  return address;
}

function watch(address, slotList) {
  address = ethers.getAddress(address);
  const s = slots.get(address) || new Set();
  for (const x of slotList) s.add(BigInt(x));
  slots.set(address, s);
}

const slotHex = (s) => ethers.toBeHex(s, 32);

/** Compares every tracked account and slot at the latest steps' blocks. */
async function compareState(step, blocks = at) {
  const calls = [];
  const keys = [];
  for (const [label, address] of accounts) {
    for (const m of ['eth_getBalance', 'eth_getTransactionCount', 'eth_getCode']) {
      calls.push([m, [address, null]]);
      keys.push(`${m.slice(6)}(${label})`);
    }
    for (const s of slots.get(address) || []) {
      calls.push(['eth_getStorageAt', [address, slotHex(s), null]]);
      keys.push(`storage(${label})[${s}]`);
    }
  }
  const withBlock = (b) => calls.map(([m, p]) => [m, p.map((x) => (x === null ? b : x))]);
  const [rp, ra] = await Promise.all([batch(P, withBlock(blocks.p)), batch(A, withBlock(blocks.a))]);
  counts.stateReads += calls.length;
  for (let i = 0; i < calls.length; i++) {
    const norm = (r) =>
      r.error ? { error: r.error.code } : calls[i][0] === 'eth_getCode' ? hex(r.result) : qty(r.result);
    check(step, `state.${keys[i]}`, norm(rp[i]), norm(ra[i]));
  }
}

// ---------------------------------------------------------- transactions --

const wallets = [];
const nonces = new Map();

async function waitReceipt(url, hash) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const r = await rpc(url, 'eth_getTransactionReceipt', [hash]);
    if (r.error) throw new Error(`${url}: eth_getTransactionReceipt: ${JSON.stringify(r.error)}`);
    if (r.result) return r.result;
    await sleep(30);
  }
  throw new Error(`${url}: no receipt for ${hash}`);
}

/** Whether `url` admitted `hash` but dropped it: no receipt and the
 * sender's nonce still `nonce` after its next blocks. */
async function droppedBy(url, hash, from, nonce) {
  const start = BigInt((await rpc(url, 'eth_blockNumber', [])).result);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const r = await rpc(url, 'eth_getTransactionReceipt', [hash]);
    if (r.result) return false;
    const b = BigInt((await rpc(url, 'eth_blockNumber', [])).result);
    const n = BigInt((await rpc(url, 'eth_getTransactionCount', [from, 'latest'])).result);
    if (n !== BigInt(nonce)) return false;
    if (b >= start + 2n || url === A) {
      const pending = await rpc(url, 'eth_getTransactionCount', [from, 'pending']);
      if (BigInt(pending.result) === BigInt(nonce)) return true;
    }
    await sleep(100);
  }
  return false;
}

/** `fields` signed by `wallet` at its next nonce (not yet counted). */
async function sign(wallet, fields, nonce = nonces.get(wallet.address)) {
  const type = fields.type ?? 2;
  const base = { chainId: CHAIN_ID, nonce, gasLimit: 3_000_000n, type, value: 0n, data: '0x' };
  if (type === 2) Object.assign(base, { maxFeePerGas: 0n, maxPriorityFeePerGas: 0n });
  else Object.assign(base, { gasPrice: 0n });
  if (type === 1 || type === 2) base.accessList = [];
  const raw = await wallet.signTransaction({ ...base, ...fields });
  return { raw, hash: ethers.keccak256(raw), nonce };
}

/**
 * Sends the signed `s` to both nodes and compares their answers. Both
 * refusing it is `{ refused: true, ... }`, which `opts.rejected` expects;
 * one running what the other refused stops the test (the nonces would
 * no longer match).
 */
async function submit(step, wallet, s, opts = {}) {
  const { raw, hash, nonce } = s;
  const [sp, sa] = await Promise.all([
    rpc(P, 'eth_sendRawTransaction', [raw]),
    rpc(A, 'eth_sendRawTransaction', [raw]),
  ]);
  if (sp.error || sa.error) {
    counts.rejected++;
    let refusedP = !!sp.error;
    let refusedA = !!sa.error;
    // A node that took it may still drop it unexecuted (anvil admits a
    // transaction below its intrinsic gas into its pool and discards it
    // when it mines): that counts as refused, and is reported.
    if (refusedP !== refusedA && (await droppedBy(refusedP ? A : P, hash, wallet.address, nonce))) {
      dropped.push({ step, refusedBy: refusedP ? 'palisade' : 'anvil', error: (sp.error ?? sa.error).message });
      console.log(`note: ${step}: refused by ${refusedP ? 'palisade' : 'anvil'}; the other admitted it and dropped it unexecuted`);
      refusedP = refusedA = true;
    }
    if (!opts.rejected) {
      differ(step, 'sendRawTransaction', sp.error ?? sp.result, sa.error ?? sa.result, 'refused');
    } else {
      check(step, 'refused', refusedP, refusedA);
    }
    if (refusedP && refusedA) {
      refusals.push({ step, palisade: sp.error?.message ?? 'admitted, dropped', anvil: sa.error?.message ?? 'admitted, dropped' });
      return { refused: true, palisade: sp.error, anvil: sa.error };
    }
    throw new Error(`${step}: one node ran a transaction the other refused; stopping`);
  }
  expect(step, 'a refusal', !opts.rejected, { palisade: sp.result, anvil: sa.result });
  nonces.set(wallet.address, nonce + 1);
  check(step, 'hash', hex(sp.result), hex(sa.result));
  expect(step, 'the keccak of the raw bytes as hash', hex(sp.result) === hash, sp.result);
  return { step, hash, opts };
}

/**
 * Waits for both receipts of a submitted transaction and compares them
 * and the transactions; the Palisade receipt, normalized.
 */
async function settle({ step, hash, opts }) {
  const [rp, ra] = await Promise.all([waitReceipt(P, hash), waitReceipt(A, hash)]);
  counts.txs++;
  const np = normReceipt(rp);
  const na = normReceipt(ra);
  for (const k of Object.keys(np)) check(step, `receipt.${k}`, np[k], na[k]);
  // Within the block: meaningful only when both put it at the same index.
  if (qty(rp.transactionIndex) === qty(ra.transactionIndex)) {
    check(step, 'receipt.cumulativeGasUsed', qty(rp.cumulativeGasUsed), qty(ra.cumulativeGasUsed));
    check(step, 'receipt.logIndex', rp.logs.map((l) => qty(l.logIndex)), ra.logs.map((l) => qty(l.logIndex)));
  }
  const [tp, ta] = await Promise.all([
    rpc(P, 'eth_getTransactionByHash', [hash]),
    rpc(A, 'eth_getTransactionByHash', [hash]),
  ]);
  const ntp = normTx(tp.result);
  const nta = normTx(ta.result);
  for (const k of new Set([...Object.keys(ntp), ...Object.keys(nta)])) check(step, `tx.${k}`, ntp[k], nta[k]);
  at.p = qty(rp.blockNumber);
  at.a = qty(ra.blockNumber);
  history.push({ step, p: at.p, a: at.a, indexP: qty(rp.transactionIndex), indexA: qty(ra.transactionIndex) });
  const want = opts.status ?? 1;
  expect(step, `status ${want}`, Number(np.status) === want || Number(na.status) === want, {
    palisade: np.status,
    anvil: na.status,
  });
  if (np.contractAddress) track(opts.label ?? step, np.contractAddress, opts.slots);
  return np;
}

/**
 * One transaction, alone in a block on both: signed once, sent to both,
 * receipts, transactions and then all tracked state compared. `opts.status`
 * is the status the test expects (1 by default).
 */
async function tx(step, wallet, fields, opts = {}) {
  const sent = await submit(step, wallet, await sign(wallet, fields), opts);
  if (sent.refused) return sent;
  const np = await settle(sent);
  await compareState(step);
  return np;
}

/**
 * Several transactions in as few blocks as each node makes of them:
 * anvil mines them as one block (automine off, then evm_mine); Palisade
 * gets them back to back and puts them in the blocks its proposer makes
 * (usually one or two at a 100 ms block interval). Their results must not
 * depend on that. `items`: [step, wallet, fields, opts?].
 */
async function burst(name, items) {
  const signed = [];
  const next = new Map();
  for (const [step, wallet, fields, opts] of items) {
    const n = next.get(wallet.address) ?? nonces.get(wallet.address);
    next.set(wallet.address, n + 1);
    signed.push([step, wallet, await sign(wallet, fields, n), opts]);
  }
  const mining = await rpc(A, 'evm_setAutomine', [false]);
  if (mining.error) throw new Error(`anvil evm_setAutomine: ${JSON.stringify(mining.error)}`);
  const sent = [];
  try {
    for (const [step, wallet, s, opts] of signed) {
      const r = await submit(`${name}: ${step}`, wallet, s, opts);
      if (r.refused) throw new Error(`${name}: ${step}: refused by both`);
      sent.push(r);
    }
    await rpc(A, 'evm_mine', []);
  } finally {
    await rpc(A, 'evm_setAutomine', [true]);
  }
  const receipts = [];
  for (const s of sent) receipts.push(await settle(s));
  const blocks = history.slice(-sent.length);
  const spread = { palisade: new Set(blocks.map((b) => b.p)).size, anvil: new Set(blocks.map((b) => b.a)).size };
  bursts.push({ name, txs: sent.length, blocks: spread });
  // Only the burst's end is a state both nodes reach (Palisade may split
  // it over blocks where anvil mines one): later looks at the block of
  // any of its transactions look at the block of its last.
  const end = blocks[blocks.length - 1];
  for (const b of blocks) Object.assign(b, { p: end.p, a: end.a });
  await compareState(name);
  return receipts;
}

/** eth_call on both at the latest steps' blocks (or `blocks`). */
async function call(step, req, opts = {}) {
  const blocks = opts.blocks ?? at;
  const c = { from: wallets[0].address, gas: '0x4c4b40', ...req };
  for (const k of ['value', 'gas']) if (typeof c[k] === 'bigint' || typeof c[k] === 'number') c[k] = qty(c[k]);
  const [rp, ra] = await Promise.all([rpc(P, 'eth_call', [c, blocks.p]), rpc(A, 'eth_call', [c, blocks.a])]);
  counts.calls++;
  check(step, 'eth_call', normCall(rp), normCall(ra));
  if (rp.error && ra.error) {
    // An Error(string) reason is the message's part all clients show
    // alike; how they word panics, custom errors and halts is their own.
    const reason = rp.error.code === 3 && String(rp.error.data).startsWith(ERROR_STRING);
    if (reason) check(step, 'eth_call.message', rp.error.message, ra.error.message);
    else if (rp.error.code !== ra.error.code || rp.error.message !== ra.error.message) {
      errorWording.push({ step, palisade: rp.error, anvil: ra.error });
    }
  }
  const ok = opts.fails ? !!rp.error : !rp.error;
  expect(step, opts.fails ? 'the call to fail' : 'the call to succeed', ok || (opts.fails ? !!ra.error : !ra.error), {
    palisade: rp,
    anvil: ra,
  });
  return { palisade: rp, anvil: ra };
}

// The test's own checks that a step did what it is there for (both nodes
// agreeing on the wrong thing would otherwise pass): Palisade's answers,
// which equal anvil's or a difference is already recorded.
async function pstate(method, address) {
  return (await rpc(P, method, [address, at.p])).result;
}
function logsOf(receipt, name) {
  return receipt.logs
    .map((l) => {
      try {
        return iface[name].parseLog(l);
      } catch {
        return null;
      }
    })
    .filter(Boolean);
}

// ------------------------------------------------------------ fixtures --

const contracts = compile([join(here, 'contracts/Conformance.sol')]);
const iface = Object.fromEntries(Object.entries(contracts).map(([k, v]) => [k, new ethers.Interface(v.abi)]));
const enc = (name, fn, args = []) => iface[name].encodeFunctionData(fn, args);
const deployData = (name, args = []) =>
  ethers.concat([contracts[name].bytecode, iface[name].encodeDeploy(args)]);

/** Init code that deploys `runtime` (hex, no 0x) as it is. */
function initFor(runtime) {
  const n = runtime.length / 2;
  return '0x61' + n.toString(16).padStart(4, '0') + '80600c6000396000f3' + runtime;
}

const word = (v) => ethers.toBeHex(BigInt(v), 32).slice(2);
const pre = (n) => ethers.getAddress('0x' + n.toString(16).padStart(40, '0'));
const fresh = (i) => ethers.getAddress(ethers.dataSlice(ethers.id(`palisade conformance fresh ${i}`), 12));

// bn254 (EIP-196/197)
const BN_P = 21888242871839275222246405745257275088696311157297823662689037894645226208583n;
const G2 = [
  11559732032986387107991004021392285783925812861821192530917403151452391805634n, // x imaginary
  10857046999023057135944570762232829481370756359578518086990519993285655852781n, // x real
  4082367875863433681332203403145435568316851327593401208105741076214120093531n, // y imaginary
  8495653923123431417604973247489272438418190587263600148770280649306958101930n, // y real
];

function modpow(b, e, m) {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

/** BLAKE2b compression input (EIP-152) for "abc" as one final block. */
function blake2fInput(rounds, finalFlag = 1) {
  const IV = [
    0x6a09e667f3bcc908n, 0xbb67ae8584caa73bn, 0x3c6ef372fe94f82bn, 0xa54ff53a5f1d36f1n,
    0x510e527fade682d1n, 0x9b05688c2b3e6c1fn, 0x1f83d9abfb41bd6bn, 0x5be0cd19137e2179n,
  ];
  const h = IV.slice();
  h[0] ^= 0x01010040n; // digest length 64, fanout 1, depth 1
  const le64 = (x) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(x);
    return b;
  };
  const rb = Buffer.alloc(4);
  rb.writeUInt32BE(rounds);
  const m = Buffer.alloc(128);
  m.write('abc', 'latin1');
  return '0x' + Buffer.concat([rb, ...h.map(le64), m, le64(3n), le64(0n), Buffer.from([finalFlag])]).toString('hex');
}

function pointEvaluation(y) {
  // The zero polynomial: commitment and proof are the point at infinity,
  // and p(z) = 0 for every z.
  const inf = 'c0' + '00'.repeat(47);
  const vh = '01' + crypto.createHash('sha256').update(Buffer.from(inf, 'hex')).digest('hex').slice(2);
  return '0x' + vh + word(5) + word(y) + inf + inf;
}

function p256(valid) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const msg = Buffer.from('palisade conformance');
  const sig = crypto.sign('sha256', msg, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const jwk = publicKey.export({ format: 'jwk' });
  const b = (s) => Buffer.from(s, 'base64url').toString('hex');
  let digest = crypto.createHash('sha256').update(msg).digest('hex');
  if (!valid) digest = 'ff' + digest.slice(2);
  return '0x' + digest + sig.toString('hex') + b(jwk.x) + b(jwk.y);
}

// --------------------------------------------------------------- main --

async function main() {
  A = await startAnvil();
  for (let i = 0; i < 4; i++) {
    wallets.push(ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`));
  }
  const [w0, w1, w2, w3] = wallets;

  // The chains agree on what the test relies on before it starts.
  for (const m of ['eth_chainId', 'eth_gasPrice']) {
    const [p, a] = await Promise.all([rpc(P, m, []), rpc(A, m, [])]);
    check('setup', m, p.result, a.result);
  }
  for (const [i, w] of wallets.entries()) {
    track(`account${i}`, w.address);
    const [np, na] = await Promise.all([
      rpc(P, 'eth_getTransactionCount', [w.address, 'latest']),
      rpc(A, 'eth_getTransactionCount', [w.address, 'latest']),
    ]);
    expect('setup', `account ${i} unused on palisade (a fresh palisade dev)`, np.result === na.result, {
      palisade: np.result,
      anvil: na.result,
    });
    nonces.set(w.address, Number(np.result));
  }
  track('coinbase', ethers.ZeroAddress);
  await compareState('setup');

  // ---- deploys (three transaction types) ----
  const C = (await tx('deploy Conformance (legacy)', w0, { type: 0, data: deployData('Conformance') }, { label: 'C', slots: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 21, 30, 40, 50, 60, 61, 62] })).contractAddress;
  expect('deploy', 'the CREATE address', C === hex(ethers.getCreateAddress({ from: w0.address, nonce: 0 })), C);
  const C2 = (await tx('deploy Conformance again (1559)', w1, { data: deployData('Conformance') }, { label: 'C2', slots: [0, 1, 60, 61, 62] })).contractAddress;
  const F = (await tx('deploy Factory (2930)', w0, { type: 1, data: deployData('Factory'), accessList: [{ address: C, storageKeys: [slotHex(0)] }] }, { label: 'F' })).contractAddress;
  const N = (await tx('deploy NoReceive', w2, { data: deployData('NoReceive') }, { label: 'N', slots: [0] })).contractAddress;
  watch(C, Array.from({ length: 40 }, (_, i) => 64 + i));
  watch(C, Array.from({ length: 25 }, (_, i) => 100 + i));

  // ---- storage and refunds ----
  await tx('set fresh slot', w0, { to: C, data: enc('Conformance', 'set', [0, 1]) });
  await tx('modify slot', w0, { to: C, data: enc('Conformance', 'set', [0, 2]) });
  await tx('set 8 slots', w1, { to: C, data: enc('Conformance', 'setMany', [1, 8, 5]) });
  await tx('set and clear in one tx', w0, { to: C, data: enc('Conformance', 'setThenClear', [10, 7]) });
  await tx('churn back to original', w0, { to: C, data: enc('Conformance', 'churn', [0, 3, 4]) });
  await tx('churn a zero slot', w0, { to: C, data: enc('Conformance', 'churn', [9, 3, 4]) });
  await tx('clear slot in later tx', w0, { to: C, data: enc('Conformance', 'set', [0, 0]) });
  await tx('clear 8 slots (refund cap)', w1, { to: C, data: enc('Conformance', 'setMany', [1, 8, 0]) });
  await tx('clear an empty slot', w0, { to: C, data: enc('Conformance', 'set', [50, 0]) });
  const high = (1n << 255n) + 7n;
  watch(C, [high]);
  await tx('set a slot above 2^255 to the largest word', w0, { to: C, data: enc('Conformance', 'set', [high, ethers.MaxUint256]) });
  await tx('transient, mcopy, clz', w0, { to: C, data: enc('Conformance', 'transientAndNew', [20, 0x1234]) });
  await tx('access list warms slot', w0, { type: 1, to: C, data: enc('Conformance', 'set', [0, 9]), accessList: [{ address: C, storageKeys: [slotHex(0), slotHex(1)] }, { address: C2, storageKeys: [] }] });
  await tx('1559 access list', w2, { to: C, data: enc('Conformance', 'set', [1, 9]), accessList: [{ address: C, storageKeys: [slotHex(1)] }] });
  for (const s of [0, 1, 9, 10, 20, 21]) await call(`get slot ${s}`, { to: C, data: enc('Conformance', 'get', [s]) });

  // ---- events ----
  const tag = ethers.id('tag');
  await tx('events with value', w0, { to: C, value: 5n, data: enc('Conformance', 'emitAll', [7, tag, 'a note', '0x' + 'ab'.repeat(70)]) });
  await tx('events, empty args', w3, { to: C, data: enc('Conformance', 'emitAll', [0, ethers.ZeroHash, '', '0x']) });

  // ---- failures: transactions ----
  await tx('require with reason', w0, { to: C, data: enc('Conformance', 'fail', [0]) }, { status: 0 });
  await tx('custom error', w0, { to: C, data: enc('Conformance', 'fail', [1]) }, { status: 0 });
  await tx('empty revert', w0, { to: C, data: enc('Conformance', 'fail', [2]) }, { status: 0 });
  await tx('assert (panic 1)', w0, { to: C, data: enc('Conformance', 'fail', [3]) }, { status: 0 });
  await tx('division by zero (panic 0x12)', w0, { to: C, data: enc('Conformance', 'fail', [4]) }, { status: 0 });
  await tx('invalid opcode', w0, { to: C, gasLimit: 500_000n, data: enc('Conformance', 'fail', [5]) }, { status: 0 });
  await tx('out of gas loop', w0, { to: C, gasLimit: 300_000n, data: enc('Conformance', 'fail', [6]) }, { status: 0 });
  await tx('returndatacopy out of bounds', w0, { to: C, gasLimit: 300_000n, data: enc('Conformance', 'fail', [7]) }, { status: 0 });
  await tx('write then revert', w0, { to: C, data: enc('Conformance', 'writeThenFail', [40, 0]) }, { status: 0 });
  await tx('write then inner invalid', w0, { to: C, gasLimit: 400_000n, data: enc('Conformance', 'writeThenFail', [40, 5]) }, { status: 0 });
  await tx('gas limit too small for SSTORE', w0, { to: C, gasLimit: 30_000n, data: enc('Conformance', 'set', [50, 1]) }, { status: 0 });
  const innerOog = await tx('inner out of gas caught', w0, { to: C, data: enc('Conformance', 'callTo', [C, 0, 50_000, enc('Conformance', 'fail', [6])]) });
  expect('inner out of gas caught', 'Called(ok = false)', logsOf(innerOog, 'Conformance')[0]?.args.ok === false);
  await tx('inner invalid caught', w0, { to: C, data: enc('Conformance', 'callTo', [C, 0, 100_000, enc('Conformance', 'fail', [5])]) });
  const dropLogs = await tx('inner writes and logs, then reverts; caught', w0, { to: C, data: enc('Conformance', 'callTo', [C, 0, 200_000, enc('Conformance', 'writeThenFail', [41, 0])]) });
  expect('inner writes and logs, then reverts', "only the caller's log", dropLogs.logs.length === 1 && logsOf(dropLogs, 'Conformance')[0]?.name === 'Called', dropLogs.logs);
  watch(C, [41]);
  await tx('inner revert caught', w0, { to: C, data: enc('Conformance', 'callTo', [C, 0, 100_000, enc('Conformance', 'fail', [1])]) });

  // ---- failures: calls ----
  for (let mode = 0; mode <= 8; mode++) {
    await call(`eth_call fail(${mode})`, { to: C, data: enc('Conformance', 'fail', [mode]) }, { fails: mode !== 8 });
  }
  await call('eth_call with too little gas', { to: C, gas: 22_000, data: enc('Conformance', 'set', [50, 1]) }, { fails: true });

  // ---- precompiles ----
  const digest = ethers.id('palisade conformance');
  const sig = new ethers.SigningKey(w0.privateKey).sign(digest);
  const ecrec = (v) => '0x' + digest.slice(2) + word(v) + sig.r.slice(2) + sig.s.slice(2);
  const modexpIn = (b, e, m, lens) => {
    const [lb, le, lm] = lens ?? [32, 32, 32];
    const f = (x, n) => ethers.toBeHex(x, n).slice(2);
    return '0x' + word(lb) + word(le) + word(lm) + f(b, lb) + f(e, le) + f(m, lm);
  };
  const g1 = word(1) + word(2);
  const precompiles = [
    // name, address, input, expected output (null: not checked beyond the comparison), expected ok
    ['ecrecover', 1, ecrec(sig.v), '0x' + word(w0.address)],
    ['ecrecover bad v', 1, ecrec(29), '0x'],
    ['sha256', 2, '0x616263', '0x' + crypto.createHash('sha256').update('abc').digest('hex')],
    ['ripemd160', 3, '0x616263', '0x' + word(ethers.ripemd160('0x616263'))],
    ['identity', 4, '0x' + 'cd'.repeat(100), '0x' + 'cd'.repeat(100)],
    ['modexp inverse', 5, modexpIn(3n, BN_P - 2n, BN_P), '0x' + word(modpow(3n, BN_P - 2n, BN_P))],
    ['modexp 128-byte operands', 5, modexpIn((1n << 1000n) + 12345n, (1n << 500n) + 3n, (1n << 1020n) + 9n, [128, 64, 128]), '0x' + ethers.toBeHex(modpow((1n << 1000n) + 12345n, (1n << 500n) + 3n, (1n << 1020n) + 9n), 128).slice(2)],
    ['modexp zero modulus length', 5, '0x' + word(1) + word(1) + word(0) + '0302', '0x'],
    ['modexp base over 1024 bytes (EIP-7823)', 5, modexpIn(3n, 5n, 7n, [1025, 1, 1]), null, false],
    ['bn254 add', 6, '0x' + g1 + g1, null],
    ['bn254 mul', 7, '0x' + g1 + word(2), null],
    ['bn254 add off curve', 6, '0x' + word(1) + word(3) + g1, null, false],
    ['bn254 pairing', 8, '0x' + g1 + G2.map(word).join('') + word(1) + word(BN_P - 2n) + G2.map(word).join(''), '0x' + word(1)],
    ['bn254 pairing empty', 8, '0x', '0x' + word(1)],
    ['bn254 pairing bad length', 8, '0x' + g1, null, false],
    ['blake2f', 9, blake2fInput(12), '0x' + crypto.createHash('blake2b512').update('abc').digest('hex')],
    ['blake2f bad flag', 9, blake2fInput(12, 2), null, false],
    ['point evaluation', 10, pointEvaluation(0), '0x' + word(4096) + word(0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001n)],
    ['point evaluation wrong y', 10, pointEvaluation(1), null, false],
    ['bls12 g1add infinity', 0x0b, '0x' + '00'.repeat(256), '0x' + '00'.repeat(128)],
    ['bls12 g1msm infinity', 0x0c, '0x' + '00'.repeat(160), '0x' + '00'.repeat(128)],
    ['bls12 g2add infinity', 0x0d, '0x' + '00'.repeat(512), '0x' + '00'.repeat(256)],
    ['bls12 g2msm infinity', 0x0e, '0x' + '00'.repeat(288), '0x' + '00'.repeat(256)],
    ['bls12 pairing infinity', 0x0f, '0x' + '00'.repeat(384), '0x' + word(1)],
    ['bls12 map fp to g1', 0x10, '0x' + '00'.repeat(64), null],
    ['bls12 map fp2 to g2', 0x11, '0x' + '00'.repeat(128), null],
    ['p256verify', 0x100, p256(true), '0x' + word(1)],
    ['p256verify bad signature', 0x100, p256(false), '0x'],
    ['no precompile at 0x12', 0x12, '0x1234', '0x'],
  ];
  const bn2g = (await call('bn254 mul by 2', { to: pre(7), data: '0x' + g1 + word(2) })).palisade.result;
  for (const [name, n, input, want, ok = true] of precompiles) {
    const r = await call(`precompile ${name}`, { to: C, data: enc('Conformance', 'pre', [pre(n), input, 1_000_000]) });
    const [gotOk, out] = iface.Conformance.decodeFunctionResult('pre', r.palisade.result);
    expect(`precompile ${name}`, `ok ${ok}`, gotOk === ok, [gotOk, out]);
    const expected = name === 'bn254 add' ? bn2g : want;
    if (expected !== null && ok) expect(`precompile ${name}`, 'its known output', out === expected, { out, expected });
    // Straight to the precompile, as eth_call's `to`.
    await call(`precompile ${name} directly`, { to: pre(n), data: input, gas: 2_000_000 }, { fails: !ok });
  }
  // In transactions: one for each, then all in one.
  for (const [name, n, input] of precompiles) {
    await tx(`precompile ${name}`, w1, { to: C, data: enc('Conformance', 'pre', [pre(n), input, 1_000_000]) });
  }
  await tx('all precompiles in one tx', w1, { to: C, gasLimit: 12_000_000n, data: enc('Conformance', 'preMany', [precompiles.map((p) => pre(p[1])), precompiles.map((p) => p[2])]) });
  await tx('tx straight to sha256', w2, { to: pre(2), data: '0x616263' });
  await tx('tx straight to ecrecover, bad input', w2, { to: pre(1), data: '0x01' });
  await tx('tx straight to modexp, too large', w2, { to: pre(5), data: modexpIn(3n, 5n, 7n, [1025, 1, 1]) }, { status: 0 });
  await tx('value to identity precompile', w2, { to: pre(4), value: 1n, data: '0xff' });
  track('identity', pre(4));
  track('sha256', pre(2));
  track('p256verify', pre(0x100));
  track('point evaluation', pre(10));

  // ---- ether ----
  const fresh1 = track('fresh1', fresh(1));
  const fresh2 = track('fresh2', fresh(2));
  const fresh3 = track('fresh3', fresh(3));
  const fresh4 = track('fresh4', fresh(4));
  await tx('ether to a fresh address', w0, { to: fresh1, value: ethers.parseEther('1') });
  await tx('ether EOA to EOA (legacy)', w0, { type: 0, to: w1.address, value: 123n });
  await tx('zero value to a fresh address', w0, { to: fresh2, value: 0n });
  await tx('ether to receive()', w0, { to: C, value: 1000n });
  await tx('ether to fallback()', w0, { to: C, value: 1001n, data: '0xdeadbeef' });
  await tx('ether to a contract without receive', w0, { to: N, value: 1n }, { status: 0 });
  await tx('contract pays EOA, fresh, contract; send()', w0, {
    to: C,
    value: 10_000n,
    data: enc('Conformance', 'pay', [[fresh3, w3.address, C2], [100, 200, 300], 7]),
  });
  await tx('send() into receive() with the stipend', w0, {
    to: C,
    value: 10n,
    data: enc('Conformance', 'pay', [[C2], [1], 2]),
  });
  await tx('contract pays the zero address (coinbase)', w0, {
    to: C,
    value: 1n,
    data: enc('Conformance', 'pay', [[ethers.ZeroAddress], [1], 0]),
  });
  await tx('contract pays a contract without receive', w0, {
    to: C,
    value: 10n,
    data: enc('Conformance', 'pay', [[N], [1], 0]),
  }, { status: 0 });

  // ---- CREATE, CREATE2, SELFDESTRUCT ----
  const salt = (i) => ethers.zeroPadValue(ethers.toBeHex(i), 32);
  const childCode = (x) => deployData('Child', [x]);
  const predict2 = (s, x) => ethers.getCreate2Address(F, salt(s), ethers.keccak256(childCode(x)));
  const child1 = ethers.getCreateAddress({ from: F, nonce: 1 });
  await tx('CREATE with value', w0, { to: F, value: 100n, data: enc('Factory', 'make', [5]) });
  track('child1', child1, [0]);
  const r2 = await call('predict CREATE2', { to: F, data: enc('Factory', 'predict', [salt(1), 7]) });
  const child2 = predict2(1, 7);
  expect('predict CREATE2', 'the ethers address', hex(r2.palisade.result) === hex('0x' + word(child2)), r2.palisade.result);
  await tx('CREATE2 with value', w0, { to: F, value: 200n, data: enc('Factory', 'make2', [salt(1), 7]) });
  track('child2', child2, [0]);
  await tx('CREATE2 collision', w0, { to: F, data: enc('Factory', 'make2', [salt(1), 7]) }, { status: 0 });
  const collision = await tx('CREATE2 collision, raw', w0, { to: F, data: enc('Factory', 'makeRaw', [childCode(7), 0, true, salt(1)]) });
  expect('CREATE2 collision, raw', 'address 0', logsOf(collision, 'Factory')[0]?.args.child === ethers.ZeroAddress);
  await tx('constructor reverts', w0, { to: F, data: enc('Factory', 'make', [666]) }, { status: 0 });
  const ef = await tx('CREATE of 0xEF code (EIP-3541)', w0, { to: F, data: enc('Factory', 'makeRaw', [initFor('ef00'), 0, false, ethers.ZeroHash]) });
  expect('CREATE of 0xEF code', 'address 0', logsOf(ef, 'Factory')[0]?.args.child === ethers.ZeroAddress);
  await tx('CREATE of reverting init code', w0, { to: F, data: enc('Factory', 'makeRaw', ['0x600160005260206000fd', 0, false, ethers.ZeroHash]) });
  await tx('CREATE2 of 24,576 bytes of code', w0, { to: F, gasLimit: 8_000_000n, data: enc('Factory', 'makeRaw', ['0x6160006000f3', 0, true, salt(9)]) });
  track('bigCode', ethers.getCreate2Address(F, salt(9), ethers.keccak256('0x6160006000f3')));
  expect('CREATE2 of 24,576 bytes', 'the code', (await pstate('eth_getCode', accounts.get('bigCode'))).length === 2 + 2 * 24576);
  await tx('CREATE of 24,577 bytes of code (EIP-170)', w0, { to: F, gasLimit: 8_000_000n, data: enc('Factory', 'makeRaw', ['0x6160016000f3', 0, false, ethers.ZeroHash]) });
  // The addresses failed CREATEs used up (Factory's nonces 5, 6 and 8).
  for (const n of [5, 6, 8]) track(`failed CREATE at nonce ${n}`, ethers.getCreateAddress({ from: F, nonce: n }));
  const prefunded = predict2(2, 9);
  track('prefunded', prefunded, [0]);
  await tx('pay a CREATE2 address before it exists', w3, { to: prefunded, value: 1000n });
  await tx('CREATE2 onto a funded address', w0, { to: F, value: 50n, data: enc('Factory', 'make2', [salt(2), 9]) });
  expect('CREATE2 onto a funded address', 'balance 1050', BigInt(await pstate('eth_getBalance', prefunded)) === 1050n);

  {
    const n = Number(await pstate('eth_getTransactionCount', F));
    track('self-destroying init code', ethers.getCreateAddress({ from: F, nonce: n }));
    const r = await tx('init code that selfdestructs', w0, { to: F, value: 7n, data: enc('Factory', 'makeRaw', ['0x33ff', 7, false, ethers.ZeroHash]) });
    expect('init code that selfdestructs', 'a created address, then nothing there', logsOf(r, 'Factory')[0]?.args.child === accounts.get('self-destroying init code') &&
      (await pstate('eth_getCode', accounts.get('self-destroying init code'))) === '0x');
  }
  const doomed = predict2(3, 11);
  track('doomed', doomed, [0]);
  const killed = await tx('create, selfdestruct, pay in one tx', w0, { to: F, value: 1000n, data: enc('Factory', 'makeAndKill', [salt(3), 11, w3.address, 5]) });
  {
    const ev = logsOf(killed, 'Factory').find((l) => l.name === 'AfterKill')?.args;
    expect('create, selfdestruct, pay', 'code and 5 wei until the end of the tx', ev && ev.codesize > 0n && ev.balance === 5n && ev.x === 11n, ev);
    expect('create, selfdestruct, pay', 'the account gone', (await pstate('eth_getCode', doomed)) === '0x' && BigInt(await pstate('eth_getBalance', doomed)) === 0n);
  }
  await tx('CREATE2 again where one was destroyed', w0, { to: F, value: 1n, data: enc('Factory', 'make2', [salt(3), 11]) });
  const burnt = predict2(4, 12);
  track('burnt', burnt, [0]);
  await tx('selfdestruct to itself in creating tx', w0, { to: F, value: 500n, data: enc('Factory', 'makeAndKill', [salt(4), 12, burnt, 0]) });
  expect('selfdestruct to itself', 'the account and its 500 wei gone', (await pstate('eth_getCode', burnt)) === '0x' && BigInt(await pstate('eth_getBalance', burnt)) === 0n);
  await tx('selfdestruct of an older contract (EIP-6780)', w0, { to: F, value: 3n, data: enc('Factory', 'kill', [child1, fresh4]) });
  expect('selfdestruct of an older contract', 'code and storage kept, 100 wei moved, 3 received',
    (await pstate('eth_getCode', child1)) !== '0x' && BigInt(await pstate('eth_getBalance', child1)) === 3n &&
    BigInt(await pstate('eth_getBalance', fresh4)) === 100n && BigInt((await rpc(P, 'eth_getStorageAt', [child1, '0x0', at.p])).result) === 5n);
  await tx('older contract selfdestructs to itself', w0, { to: child2, data: iface.Child.encodeFunctionData('kill', [child2]) });
  expect('older contract selfdestructs to itself', 'its 200 wei kept', BigInt(await pstate('eth_getBalance', child2)) === 200n);
  const direct = (await tx('deploy Child with value', w1, { data: childCode(1), value: 77n }, { label: 'direct child', slots: [0] })).contractAddress;
  await tx('selfdestruct a directly deployed contract', w2, { to: direct, data: iface.Child.encodeFunctionData('kill', [w2.address]) });
  await tx('deploy whose constructor reverts', w1, { data: childCode(666) }, { status: 0 });
  await tx('deploy 0xEF code', w1, { data: initFor('ef') }, { status: 0 });
  const underflow = (await tx('deploy JUMP-on-empty-stack code', w1, { data: initFor('56') }, { label: 'underflow' })).contractAddress;
  const badJump = (await tx('deploy bad-jump code', w1, { data: initFor('600056') }, { label: 'badJump' })).contractAddress;
  await tx('stack underflow', w2, { to: underflow, gasLimit: 100_000n }, { status: 0 });
  await tx('invalid jump destination', w2, { to: badJump, gasLimit: 100_000n }, { status: 0 });
  await call('eth_call creation code', { data: childCode(3) });
  await call('eth_call creation that reverts', { data: childCode(666) }, { fails: true });

  // ---- nested calls ----
  await tx('delegatecall writes caller storage', w0, { to: C, data: enc('Conformance', 'delegateTo', [C2, enc('Conformance', 'set', [60, 61])]) });
  await tx('staticcall reads', w0, { to: C, data: enc('Conformance', 'staticTo', [C2, enc('Conformance', 'get', [1])]) });
  await tx('staticcall that writes fails inside', w0, { to: C, data: enc('Conformance', 'staticTo', [C2, enc('Conformance', 'set', [1, 1])]) });
  await tx('call with value emits in callee', w0, { to: C, value: 10n, data: enc('Conformance', 'callTo', [C2, 10, 200_000, enc('Conformance', 'emitAll', [3, tag, 'x', '0x01'])]) });
  await tx('C -> C2 -> C writes', w0, {
    to: C,
    data: enc('Conformance', 'callTo', [C2, 0, 300_000, enc('Conformance', 'callTo', [C, 0, 200_000, enc('Conformance', 'set', [61, 62])])]),
  });
  await tx('delegatecall inside delegatecall', w0, {
    to: C,
    data: enc('Conformance', 'delegateTo', [C2, enc('Conformance', 'delegateTo', [C2, enc('Conformance', 'set', [62, 63])])]),
  });
  await tx('recursion 20 deep with value', w3, { to: C, value: 30n, data: enc('Conformance', 'recurse', [20]) });
  await call('eth_call recursion', { to: C, data: enc('Conformance', 'recurse', [5]), value: 6n });

  // ---- introspection ----
  const who = [w0.address, fresh1, fresh2, fresh(99), pre(1), pre(2), pre(4), pre(10), pre(0x100), C, F, N,
    child1, child2, doomed, burnt, prefunded, direct, ethers.ZeroAddress, accounts.get('bigCode')];
  {
    const r = await call('balance, extcodehash, extcodesize', { to: C, data: enc('Conformance', 'inspect', [who]) });
    const [, hashes] = iface.Conformance.decodeFunctionResult('inspect', r.palisade.result);
    const h = (a) => hashes[who.indexOf(a)];
    // EIP-161/1052: an account never touched, or touched and left empty, has
    // no code hash; one that holds value and no code has keccak("").
    expect('introspection', 'no hash for fresh2, fresh(99), burnt; keccak("") for identity and fresh1',
      h(fresh2) === ethers.ZeroHash && h(fresh(99)) === ethers.ZeroHash && h(burnt) === ethers.ZeroHash &&
      h(pre(4)) === ethers.keccak256('0x') && h(fresh1) === ethers.keccak256('0x') && h(pre(2)) === ethers.ZeroHash, hashes);
  }
  await tx('introspection in a transaction', w2, { to: C, data: enc('Conformance', 'inspectLog', [who]) });
  await call('Child.x of the older destroyed contract', { to: child1, data: iface.Child.encodeFunctionData('x') });
  await call('NoReceive.x', { to: N, data: iface.NoReceive.encodeFunctionData('x') });

  // ---- several transactions in one block ----
  const reborn = predict2(5, 13);
  track('reborn', reborn, [0]);
  const blockChild = ethers.getCreateAddress({ from: w2.address, nonce: nonces.get(w2.address) + 7 });
  track('child deployed in a burst', blockChild, [0]);
  watch(C, [80, 81]);
  const br = await burst('burst', [
    ['set 80', w2, { to: C, data: enc('Conformance', 'set', [80, 1]) }],
    ['clear 80 (next tx, same block)', w2, { to: C, data: enc('Conformance', 'set', [80, 0]) }],
    ['set 80 again', w2, { to: C, data: enc('Conformance', 'set', [80, 3]) }],
    ['churn 80', w2, { to: C, data: enc('Conformance', 'churn', [80, 4, 5]) }],
    ['create and destroy', w2, { to: F, value: 10n, data: enc('Factory', 'makeAndKill', [salt(5), 13, w2.address, 0]) }],
    ['pay where it was', w2, { to: reborn, value: 3n }],
    ['CREATE2 there again', w2, { to: F, data: enc('Factory', 'make2', [salt(5), 13]) }],
    ['deploy a child', w2, { data: childCode(21), value: 4n }],
    ['destroy it next tx (EIP-6780: stays)', w2, { to: blockChild, data: iface.Child.encodeFunctionData('kill', [w3.address]) }],
    ['set 81 with access list', w2, { type: 1, to: C, data: enc('Conformance', 'set', [81, 1]), accessList: [{ address: C, storageKeys: [slotHex(81)] }] }],
    ['set and clear 81', w2, { to: C, data: enc('Conformance', 'setThenClear', [81, 9]) }],
  ]);
  expect('burst', 'the child deployed at its address', br[7].contractAddress === hex(blockChild), br[7].contractAddress);
  expect('burst', 'the reborn child with the 3 wei paid before', BigInt(await pstate('eth_getBalance', reborn)) === 3n && (await pstate('eth_getCode', reborn)) !== '0x');
  expect('burst', 'the child destroyed in a later tx kept its code', (await pstate('eth_getCode', blockChild)) !== '0x');

  // ---- fees (the one place a step pays for gas) ----
  for (const [step, fields, price] of [
    ['1559 with a tip', { to: C, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n, data: enc('Conformance', 'set', [2, 2]) }, 1n],
    ['legacy with a gas price', { type: 0, gasPrice: 3n, to: w0.address, value: 1n }, 3n],
    ['to itself, with value and a tip', { to: w3.address, value: 5n, maxFeePerGas: 4n, maxPriorityFeePerGas: 4n }, 4n],
  ]) {
    const before = BigInt(await pstate('eth_getBalance', ethers.ZeroAddress));
    const r = await tx(step, w3, fields);
    const paid = BigInt(await pstate('eth_getBalance', ethers.ZeroAddress)) - before;
    expect(step, 'the tip paid to COINBASE (the zero address)', paid === BigInt(r.gasUsed) * price, paid);
  }

  // ---- environment ----
  const e = await Promise.all([
    rpc(P, 'eth_call', [{ from: w1.address, to: C, data: enc('Conformance', 'env'), gas: '0x4c4b40' }, at.p]),
    rpc(A, 'eth_call', [{ from: w1.address, to: C, data: enc('Conformance', 'env'), gas: '0x4c4b40' }, at.a]),
  ]);
  counts.calls++;
  const [ep, ea] = e.map((r) => {
    const v = iface.Conformance.decodeFunctionResult('env', r.result);
    return Object.fromEntries(Object.entries(v.toObject()).map(([k, x]) => [k, typeof x === 'bigint' ? x.toString() : hex(x)]));
  });
  for (const k of ['chainid', 'basefee', 'coinbase', 'blobbasefee', 'origin', 'gasprice', 'sender']) {
    check('env', k, ep[k], ea[k]);
  }
  // The fields that differ between the chains must each agree with the
  // chain's own block (as eth_getBlockByNumber shows it).
  const [bp, ba] = await Promise.all([
    rpc(P, 'eth_getBlockByNumber', [at.p, false]),
    rpc(A, 'eth_getBlockByNumber', [at.a, false]),
  ]);
  const [pp, pa] = await Promise.all([
    rpc(P, 'eth_getBlockByNumber', [qty(BigInt(at.p) - 1n), false]),
    rpc(A, 'eth_getBlockByNumber', [qty(BigInt(at.a) - 1n), false]),
  ]);
  const envDiffers = {};
  for (const [k, field] of [
    ['number', 'number'],
    ['timestamp', 'timestamp'],
    ['gaslimit', 'gasLimit'],
    ['prevrandao', 'mixHash'],
    ['coinbase', 'miner'],
    ['basefee', 'baseFeePerGas'],
  ]) {
    const agrees = (env, block) => (k === 'coinbase' ? env[k] === hex(block[field]) : BigInt(env[k]) === BigInt(block[field]));
    check('env', `${k} is the block's ${field}`, agrees(ep, bp.result), agrees(ea, ba.result),
      `palisade: ${k} ${ep[k]}, block ${bp.result[field]}; anvil: ${k} ${ea[k]}, block ${ba.result[field]}`);
    envDiffers[k] = { palisade: ep[k], anvil: ea[k] };
  }
  envDiffers.blockhash = { palisade: ep.parentHash, anvil: ea.parentHash };
  // BLOCKHASH(number - 1) is each chain's parent block's hash.
  check('env', "BLOCKHASH(number - 1) is the parent block's hash",
    ep.parentHash === hex(pp.result.hash), ea.parentHash === hex(pa.result.hash),
    `palisade: ${ep.parentHash}, block ${pp.result.hash}; anvil: ${ea.parentHash}, block ${pa.result.hash}`);

  // ---- transactions both must refuse ----
  const n0 = nonces.get(w0.address);
  await tx('refused: nonce already used', w0, { nonce: n0 - 1, to: w1.address, value: 1n }, { rejected: true });
  await tx('refused: gas limit above 2^24', w0, { to: w1.address, gasLimit: (1n << 24n) + 1n }, { rejected: true });
  await tx('refused: intrinsic gas too low', w0, { to: C, gasLimit: 21_000n, data: enc('Conformance', 'set', [1, 1]) }, { rejected: true });
  await tx('refused: value beyond balance', w0, { to: w1.address, value: ethers.parseEther('1000000') }, { rejected: true });
  {
    const raw = await w0.signTransaction({ chainId: 1n, nonce: n0, gasLimit: 21_000n, type: 2, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n, to: w1.address, value: 1n });
    const [p, a] = await Promise.all([rpc(P, 'eth_sendRawTransaction', [raw]), rpc(A, 'eth_sendRawTransaction', [raw])]);
    counts.rejected++;
    check('refused: wrong chain id', 'refused', !!p.error, !!a.error);
    refusals.push({ step: 'refused: wrong chain id', palisade: p.error?.message, anvil: a.error?.message });
    if (!p.error || !a.error) throw new Error('a transaction for chain 1 was accepted; stopping');
  }
  const initMax = '0x' + '00'.repeat(49153);
  await tx('refused: init code over 49,152 bytes (EIP-3860)', w0, { data: initMax, gasLimit: 5_000_000n }, { rejected: true });
  await compareState('after refusals');

  // ---- intended difference: permissions ----
  const outsider = ethers.Wallet.createRandom();
  const rawOut = await outsider.signTransaction({ chainId: CHAIN_ID, nonce: 0, gasLimit: 21_000n, type: 2, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n, to: w0.address, value: 0n });
  const [op, oa] = await Promise.all([rpc(P, 'eth_sendRawTransaction', [rawOut]), rpc(A, 'eth_sendRawTransaction', [rawOut])]);
  const intended = {
    outsiderRefusedByPalisade: !!op.error && JSON.stringify(op.error).includes('member'),
    outsiderAcceptedByAnvil: !oa.error,
  };
  expect('permissions', 'palisade to refuse a sender without member', intended.outsiderRefusedByPalisade, op);
  expect('permissions', 'anvil to accept it', intended.outsiderAcceptedByAnvil, oa);
  // eth_call needs no role, but a creation in it needs `deployer`.
  await call('eth_call from an address without roles', { from: outsider.address, to: C, data: enc('Conformance', 'get', [20]) });
  {
    const c = { from: outsider.address, data: childCode(3), gas: '0x4c4b40' };
    const [p, a] = await Promise.all([rpc(P, 'eth_call', [c, at.p]), rpc(A, 'eth_call', [c, at.a])]);
    intended.creatingCallRefusedByPalisade = !!p.error && JSON.stringify(p.error).includes('deployer');
    intended.creatingCallRunByAnvil = !a.error;
    expect('permissions', 'palisade to refuse a creating eth_call without deployer', intended.creatingCallRefusedByPalisade, p);
    expect('permissions', 'anvil to run it', intended.creatingCallRunByAnvil, a);
  }
  if (!oa.error) await waitReceipt(A, oa.result);
  // Legacy without a chain id (pre-EIP-155) and EIP-7702 set-code
  // transactions: Palisade refuses both (docs/rpc.md); anvil runs them.
  // Accounts 8 and 9, which nothing above uses or compares.
  const [w8, w9] = [8, 9].map((i) => ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`));
  {
    const unsigned = ethers.Transaction.from({ type: 0, nonce: 0, gasLimit: 21_000n, gasPrice: 0n, to: w9.address, value: 0n });
    unsigned.chainId = 0n;
    const raw = ethers.Transaction.from({ ...unsigned.toJSON(), signature: w9.signingKey.sign(unsigned.unsignedHash) }).serialized;
    const [p, a] = await Promise.all([rpc(P, 'eth_sendRawTransaction', [raw]), rpc(A, 'eth_sendRawTransaction', [raw])]);
    intended.unprotectedLegacyRefusedByPalisade = !!p.error;
    intended.unprotectedLegacyAcceptedByAnvil = !a.error;
    expect('permissions', 'palisade to refuse a legacy transaction without chain id', !!p.error, p);
    if (!a.error) await waitReceipt(A, a.result);
  }
  {
    const auth = await w8.authorize({ address: C, nonce: 1n, chainId: CHAIN_ID });
    const raw = await w8.signTransaction({ type: 4, chainId: CHAIN_ID, nonce: 0, gasLimit: 100_000n, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n, to: w8.address, value: 0n, data: '0x', authorizationList: [auth] });
    const [p, a] = await Promise.all([rpc(P, 'eth_sendRawTransaction', [raw]), rpc(A, 'eth_sendRawTransaction', [raw])]);
    intended.setCodeRefusedByPalisade = !!p.error;
    intended.setCodeAcceptedByAnvil = !a.error;
    expect('permissions', 'palisade to refuse an EIP-7702 transaction', !!p.error, p);
    if (!a.error) await waitReceipt(A, a.result);
  }

  // ---- history: state and calls at earlier blocks ----
  for (const h of history.filter((_, i) => i % 7 === 3)) {
    await compareState(`at block of "${h.step}"`, h);
    await call(`get(0) at block of "${h.step}"`, { to: C, data: enc('Conformance', 'get', [0]) }, { blocks: h });
  }

  // eth_getLogs over every block of the test, with filters of each kind:
  // the same logs of the same transactions, in the same order (block
  // numbers and indexes within blocks are each chain's own).
  {
    const first = history[0];
    const last = history[history.length - 1];
    const stored = iface.Conformance.getEvent('Stored').topicHash;
    const created = iface.Factory.getEvent('Created').topicHash;
    for (const [name, filter] of [
      ['all', {}],
      ['address C', { address: C }],
      ['addresses and topic0 choices', { address: [C, C2, F], topics: [[stored, created]] }],
      // Anon's second topic; then logs with `tag` first and at least two
      // topics (LOG2 to LOG4, not LOG1).
      ['topic in position 1', { topics: [null, tag] }],
      ['topic0 and a second topic', { topics: [tag, null] }],
    ]) {
      const range = (b) => ({ fromBlock: b === 'p' ? first.p : first.a, toBlock: b === 'p' ? last.p : last.a, ...filter });
      const [lp, la] = await Promise.all([rpc(P, 'eth_getLogs', [range('p')]), rpc(A, 'eth_getLogs', [range('a')])]);
      counts.calls++;
      const norm = (r) =>
        r.error
          ? { error: r.error.code }
          : r.result.map((l) => ({ address: hex(l.address), topics: l.topics.map(hex), data: hex(l.data), transactionHash: hex(l.transactionHash), removed: l.removed }));
      check(`eth_getLogs ${name}`, 'logs', norm(lp), norm(la));
      expect(`eth_getLogs ${name}`, 'some logs', !lp.error && lp.result.length > 0, lp.error ?? lp.result.length);
    }
  }

  // eth_estimateGas: both answer the least gas that works, by their own
  // search; reported, not compared.
  const estimates = {};
  for (const [name, req] of [
    ['set', { to: C, data: enc('Conformance', 'set', [70, 1]) }],
    ['recurse', { to: C, data: enc('Conformance', 'recurse', [10]) }],
    ['transfer', { to: fresh(77), value: '0x1' }],
  ]) {
    const c = { from: w0.address, ...req };
    const [p, a] = await Promise.all([rpc(P, 'eth_estimateGas', [c]), rpc(A, 'eth_estimateGas', [c])]);
    estimates[name] = { palisade: p.result ?? p.error, anvil: a.result ?? a.error };
  }

  const summary = {
    ok: diffs.length === 0,
    txs: counts.txs,
    rejected: counts.rejected,
    calls: counts.calls,
    stateReads: counts.stateReads,
    checks: counts.checks,
    differences: diffs.length,
    tolerated: tolerated.map((d) => d.key),
    dropped,
    refusals,
    bursts,
    errorWording,
    intended,
    envDiffers,
    estimates,
  };
  if (diffs.length > 0) {
    console.log(`\n${diffs.length} difference(s) between palisade and anvil:`);
    for (const d of diffs) console.log(`  ${d.key}: palisade ${show(d.palisade)}, anvil ${show(d.anvil)}`);
    console.log(JSON.stringify(summary));
    killAnvil();
    process.exit(1);
  }
  console.log(JSON.stringify(summary));
  killAnvil();
  process.exit(0);
}

main().catch((e) => {
  killAnvil();
  console.error('differential: failed:', e?.stack || e);
  if (diffs.length > 0) console.error(`(${diffs.length} difference(s) found before the failure)`);
  process.exit(1);
});
