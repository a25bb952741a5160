// A dapp's whole contract workflow through ethers v6, on one node or two
// of the same chain: compiles the ERC-20 (runtime/tests/fixtures/Token.sol)
// and contracts/Events.sol with solc-js in-process, deploys both with the
// standard development accounts, subscribes over WebSocket (new heads and
// logs, by address and indexed arguments), transfers and stores, then
// checks the receipts, balances (also at past blocks), gas estimates,
// eth_getLogs through `contract.queryFilter` and `provider.getLogs`, the
// logs and heads the subscriptions delivered, and the revert reasons and
// custom errors (with their arguments) of failing eth_call and
// eth_estimateGas.
//
// Transactions go to SEND_URL; everything is read from, and subscribed on,
// READ_URL (default SEND_URL; ws:// on the same host and port). Every wait
// is bounded. Prints one JSON object: `ok`, each check (true, or what was
// seen and expected), `failures`, and the addresses and blocks involved;
// exits 1 on any failure. tests/tests/it/eth_clients.rs runs it against
// `palisade dev` and a 4-validator devnet; it also runs against anvil
// (`anvil --chain-id 1337`), the reference it was written against.
//
// usage: node contracts.mjs SEND_URL [READ_URL]
import { fileURLToPath } from "node:url";
import { ethers } from "ethers";
// ws (the version ethers uses, locked in package-lock.json), for the
// raw eth_subscribe / eth_unsubscribe exchanges ethers does not expose.
import WebSocket from "ws";
import { compile } from "./compile.mjs";

const [sendUrl, readArg] = process.argv.slice(2);
if (!sendUrl) {
  console.error("usage: node contracts.mjs SEND_URL [READ_URL]");
  process.exit(2);
}
const readUrl = readArg ?? sendUrl;
const wsUrl = readUrl.replace(/^http/, "ws");
/** Bound on each wait (a receipt, a height, a subscription's events). */
const WAIT_MS = Number(process.env.CONTRACTS_WAIT_MS ?? 30000);
/** Bound on the whole run. */
const TOTAL_MS = Number(process.env.CONTRACTS_TOTAL_MS ?? 240000);
const MNEMONIC = "test test test test test test test test test test test junk";
const SUPPLY = 1000000n;

const out = { sendUrl, readUrl, wsUrl, checks: {}, failures: [], notes: {} };
const closers = [];
let finished = false;

/** Records a check: `ok`, or what was seen (and expected). */
function check(name, ok, seen) {
  if (name in out.checks) name = `${name}#${Object.keys(out.checks).length}`;
  out.checks[name] = ok ? true : { seen };
  if (!ok) out.failures.push(`${name}: ${stringify(seen)}`);
  return ok;
}
/** A check that `actual` equals `expected` (compared as JSON). */
function checkEq(name, actual, expected) {
  const ok = stringify(actual) === stringify(expected);
  return check(name, ok, ok ? undefined : { actual, expected });
}
function stringify(v) {
  return JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x));
}

async function finish(code) {
  if (finished) return;
  finished = true;
  for (const c of closers.reverse()) {
    try {
      await within(Promise.resolve(c()), "close", 5000);
    } catch (e) {
      out.failures.push(`close: ${e.message}`);
    }
  }
  out.ok = out.failures.length === 0 && code === 0;
  console.log(stringify(out));
  process.exitCode = out.ok ? 0 : 1;
  // Everything is closed, so the process ends by itself; if a handle was
  // left open, say so and end anyway.
  setTimeout(() => {
    console.error("contracts.mjs: a handle stayed open after closing the providers");
    process.exit(1);
  }, 5000).unref();
}

// Nothing waits forever: the whole run is bounded too.
setTimeout(() => {
  out.failures.push(`the run took more than ${TOTAL_MS} ms`);
  finish(1).then(() => process.exit(1));
}, TOTAL_MS).unref();
// A rejected promise nobody awaits (an eth_subscribe ethers sent and the
// node refused) is a failure, not a crash. (solc-js's Emscripten module
// installed a handler that rethrows it: replaced.)
process.removeAllListeners("unhandledRejection");
process.on("unhandledRejection", (e) => {
  const why = e?.error ? ` ${stringify(e.error)}` : "";
  out.failures.push(`unhandled rejection: ${e?.shortMessage ?? e?.message ?? e}${why}`);
});
process.on("uncaughtException", (e) => {
  out.failures.push(`uncaught exception: ${e?.shortMessage ?? e?.message ?? e}`);
  finish(1).then(() => process.exit(1));
});

/** `p`, or a rejection after `ms`. */
function within(p, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `f` until it returns a truthy value (bounded). */
async function until(f, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(50);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs one part; a failure is recorded, and fatal ones end the run. */
async function part(name, f, fatal = false) {
  try {
    return await f();
  } catch (e) {
    const why = e?.shortMessage ?? e?.message ?? String(e);
    out.failures.push(`${name}: ${why}${e?.info ? " " + stringify(e.info).slice(0, 600) : ""}`);
    if (fatal) {
      await finish(1);
      process.exit(1);
    }
    return undefined;
  }
}

/** The error `f` throws (a check fails if it does not throw). */
async function failure(name, f) {
  try {
    const v = await within(Promise.resolve().then(f), name);
    check(name, false, { unexpectedResult: v });
    return null;
  } catch (e) {
    return e;
  }
}

/** A raw JSON-RPC request over HTTP: the whole response object. */
async function rawHttp(url, method, params) {
  const res = await within(
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    }),
    method,
  );
  return res.json();
}

/** A raw WebSocket JSON-RPC client: requests, and every notification by
 *  subscription id with its arrival order. */
class RawWs {
  constructor(url) {
    this.sock = new WebSocket(url);
    this.nextId = 1;
    this.seq = 0;
    this.waiting = new Map();
    this.notes = new Map();
    this.opened = new Promise((resolve, reject) => {
      this.sock.once("open", resolve);
      this.sock.once("error", reject);
    });
    this.sock.on("error", () => {});
    this.sock.on("message", (data) => {
      const m = JSON.parse(data.toString());
      const seq = ++this.seq;
      if (m.method === "eth_subscription") {
        const id = m.params.subscription;
        if (!this.notes.has(id)) this.notes.set(id, []);
        this.notes.get(id).push({ seq, result: m.params.result });
      } else if (this.waiting.has(m.id)) {
        this.waiting.get(m.id)({ ...m, seq });
        this.waiting.delete(m.id);
      }
    });
  }
  async request(method, params) {
    await within(this.opened, "WebSocket open");
    const id = this.nextId++;
    const answer = new Promise((resolve) => this.waiting.set(id, resolve));
    this.sock.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    return within(answer, `${method} over WebSocket`);
  }
  received(id) {
    return this.notes.get(id) ?? [];
  }
  close() {
    return new Promise((resolve) => {
      if (this.sock.readyState === WebSocket.CLOSED) return resolve();
      this.sock.once("close", resolve);
      this.sock.close();
      setTimeout(() => {
        this.sock.terminate();
        resolve();
      }, 2000).unref();
    });
  }
}

/** ethers' WebSocketProvider, counting the subscriptions the node
 *  accepted (ethers sends eth_subscribe without awaiting it). */
class WsProvider extends ethers.WebSocketProvider {
  constructor(url) {
    super(url);
    this.accepted = [];
  }
  _register(id, subscriber) {
    this.accepted.push(id);
    super._register(id, subscriber);
  }
}

/** A log as a comparable value, from ethers' Log or a raw JSON log. */
function logKey(l) {
  const n = (x) => (typeof x === "string" ? Number(BigInt(x)) : x);
  return stringify({
    address: l.address.toLowerCase(),
    topics: l.topics.map((t) => t.toLowerCase()),
    data: l.data.toLowerCase(),
    blockNumber: n(l.blockNumber),
    blockHash: l.blockHash.toLowerCase(),
    transactionHash: l.transactionHash.toLowerCase(),
    transactionIndex: n(l.transactionIndex),
    index: n(l.index ?? l.logIndex),
  });
}
const keys = (logs) => logs.map(logKey);
/** A decoded revert as [name, ...args] (null without an error). */
const revertOf = (err) => err && [err.revert?.name ?? null, ...(err.revert?.args ?? [])];
const topicOf = (n) => ethers.zeroPadValue(ethers.toBeHex(n), 32);

// ---------------------------------------------------------------------

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const send = new ethers.JsonRpcProvider(sendUrl, undefined, { pollingInterval: 100 });
const reader =
  readUrl === sendUrl ? send : new ethers.JsonRpcProvider(readUrl, undefined, { pollingInterval: 100 });
closers.push(() => send.destroy());
if (reader !== send) closers.push(() => reader.destroy());
/** Waits until the reading node has block `n`. */
const readerAt = (n) =>
  until(async () => (await reader.getBlockNumber()) >= n, `the reading node at block ${n}`);
const wallets = [0, 1, 2].map((i) => {
  const key = ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).privateKey;
  // ethers caches identical requests (a pending nonce included) for
  // 250 ms: a NonceManager counts nonces locally, as dapps do.
  const w = new ethers.NonceManager(new ethers.Wallet(key, send));
  w.address = new ethers.Wallet(key).address;
  return w;
});
const [w0, w1, w2] = wallets;
out.accounts = wallets.map((w) => w.address);

// The chain.
await part(
  "network",
  async () => {
    const [a, b] = await within(Promise.all([send.getNetwork(), reader.getNetwork()]), "eth_chainId");
    out.chainId = a.chainId.toString();
    checkEq("same chain id on both nodes", b.chainId.toString(), out.chainId);
  },
  true,
);

// Compile with solc-js, in this process.
const compiled = await part(
  "compile",
  async () => compile([here("../../runtime/tests/fixtures/Token.sol"), here("contracts/Events.sol")]),
  true,
);
const { Token, Events } = compiled;
check("compiled", Token?.bytecode?.length > 100 && Events?.bytecode?.length > 100, Object.keys(compiled));

/** Deploys `artifact` from w0, with an estimate first: its receipt. */
async function deploy(name, artifact, args) {
  const factory = new ethers.ContractFactory(artifact.abi, artifact.bytecode, w0);
  const nonce = await within(send.getTransactionCount(w0.address, "pending"), "nonce");
  const request = await factory.getDeployTransaction(...args);
  const estimate = await within(w0.estimateGas(request), "deploy estimate");
  const contract = await within(factory.deploy(...args), `${name} deploy`);
  const receipt = await within(contract.deploymentTransaction().wait(1, WAIT_MS), `${name} deploy receipt`);
  const address = await contract.getAddress();
  const expected = ethers.getCreateAddress({ from: w0.address, nonce });
  checkEq(`${name}: address is CREATE(sender, nonce)`, address, expected);
  checkEq(`${name}: deploy receipt status`, receipt.status, 1);
  checkEq(`${name}: receipt contractAddress`, receipt.contractAddress, expected);
  const { gasUsed } = receipt;
  check(`${name}: deploy gasUsed within the estimate`, gasUsed <= estimate && estimate < 2n * gasUsed, {
    gasUsed,
    estimate,
  });
  await readerAt(receipt.blockNumber);
  checkEq(`${name}: code on the reading node`, await reader.getCode(address), artifact.deployedBytecode);
  return { contract, receipt, address };
}

const tokenDeploy = await part("deploy Token", () => deploy("Token", Token, [SUPPLY]), true);
const eventsDeploy = await part("deploy Events", () => deploy("Events", Events, []), true);
const token = tokenDeploy.contract;
const events = eventsDeploy.contract;
out.token = tokenDeploy.address;
out.events = eventsDeploy.address;
{
  const logs = tokenDeploy.receipt.logs.map((l) => token.interface.parseLog(l));
  checkEq(
    "Token: constructor's Transfer in the deploy receipt",
    logs.map((l) => [l?.name, ...(l?.args ?? [])]),
    [["Transfer", ethers.ZeroAddress, w0.address, SUPPLY]],
  );
}

// Subscribe, on the reading node, before the transactions.
const ws = new WsProvider(wsUrl);
ws.websocket.on("error", (e) => out.failures.push(`WebSocketProvider: ${e.message}`));
closers.push(() => ws.destroy());
const raw = new RawWs(wsUrl);
closers.push(() => raw.close());
const got = { blocks: [], fromW0: [], storedA: [], taggedBeta: [], both: [] };
const subIds = {};
const subscribed = await part("subscribe", async () => {
  const wsToken = new ethers.Contract(out.token, Token.abi, ws);
  const wsEvents = new ethers.Contract(out.events, Events.abi, ws);
  // eth_subscribe "newHeads".
  await ws.on("block", (n) => got.blocks.push(n));
  // "logs" by an indexed argument: transfers from account 0 only.
  // (With a filter, ethers passes only the event payload; the decoded
  // arguments are its `args`.)
  await wsToken.on(wsToken.filters.Transfer(w0.address), (...args) => {
    const ev = args.at(-1);
    const [from, to, value] = ev.args;
    got.fromW0.push({ from, to, value, log: ev.log });
  });
  // A raw {address, topics} filter, a wildcard in position 1: Stored(*, key 7).
  await ws.on(
    { address: out.events, topics: [events.interface.getEvent("Stored").topicHash, null, topicOf(7)] },
    (log) => got.storedA.push(log),
  );
  // An indexed string (its topic is the hash): Tagged("beta", *).
  await wsEvents.on(wsEvents.filters.Tagged("beta"), (...args) => got.taggedBeta.push(args.at(-1).log));
  // Two addresses, any topics.
  await ws.on({ address: [out.token, out.events] }, (log) => got.both.push(log));
  await until(() => ws.accepted.length >= 5, "the node to accept ethers' 5 eth_subscribe");
  // The same over a raw socket, to see the notifications themselves.
  const heads = await raw.request("eth_subscribe", ["newHeads"]);
  const logs = await raw.request("eth_subscribe", [
    "logs",
    { address: out.token, topics: [token.interface.getEvent("Transfer").topicHash] },
  ]);
  out.notes.rawSubscribe = { heads, logs };
  subIds.heads = heads.result;
  subIds.logs = logs.result;
  // Ethereum nodes (geth, anvil) name a subscription with a hex string;
  // ethers takes anything, but Go's ethclient cannot read a number.
  const hexId = (x) => typeof x === "string" && /^0x[0-9a-fA-F]+$/.test(x);
  check("raw eth_subscribe newHeads answers a hex string id", hexId(heads.result), heads);
  check("raw eth_subscribe logs answers a hex string id", hexId(logs.result), logs);
  return true;
});

// Transactions after subscribing. Account 1 spends what it received, so
// its transfer waits for the first receipt.
const receipts = {};
async function sent(name, txPromise) {
  const tx = await within(txPromise, `${name}: send`);
  const receipt = await within(tx.wait(1, WAIT_MS), `${name}: receipt`);
  checkEq(`${name}: receipt status`, receipt.status, 1);
  checkEq(`${name}: receipt hash`, receipt.hash, tx.hash);
  receipts[name] = receipt;
  return receipt;
}
await part(
  "transfers",
  async () => {
    const estimate = await within(token.transfer.estimateGas(w1.address, 100n), "transfer estimate");
    check("transfer estimate is an ERC-20 transfer's", estimate > 21000n && estimate < 100000n, { estimate });
    const t1 = token.transfer(w1.address, 100n);
    const t2 = token.transfer(w2.address, 50n);
    const [r1] = await Promise.all([sent("t1", t1), sent("t2", t2)]);
    check("t1 gasUsed within the estimate", r1.gasUsed <= estimate, { gasUsed: r1.gasUsed, estimate });
    checkEq(
      "t1 receipt's Transfer log",
      r1.logs.map((l) => [token.interface.parseLog(l)?.name, ...token.interface.parseLog(l).args]),
      [["Transfer", w0.address, w1.address, 100n]],
    );
    await sent("t3", token.connect(w1).transfer(w2.address, 30n));
  },
  true,
);
await part(
  "stores",
  async () => {
    const estimate = await within(events.store.estimateGas(7n, 11n, "alpha"), "store estimate");
    // Two senders, possibly in one block.
    const [s1] = await Promise.all([
      sent("s1", events.store(7n, 11n, "alpha")),
      sent("s2", events.connect(w1).store(8n, 12n, "beta")),
    ]);
    check("s1 gasUsed within the estimate", s1.gasUsed <= estimate && estimate < 2n * s1.gasUsed, {
      gasUsed: s1.gasUsed,
      estimate,
    });
    // Five logs from one transaction, in order, with consecutive indexes.
    checkEq(
      "s1 receipt's five logs",
      s1.logs.map((l) => events.interface.parseLog(l)?.name ?? "anonymous"),
      ["Stored", "Counted", "Tagged", "Plain", "anonymous"],
    );
    checkEq(
      "s1 log indexes are consecutive",
      s1.logs.map((l) => l.index - s1.logs[0].index),
      [0, 1, 2, 3, 4],
    );
    const stored = events.interface.parseLog(s1.logs[0]);
    checkEq("s1 Stored args", [...stored.args], [w0.address, 7n, 11n, "alpha"]);
    checkEq("anonymous Raw log's topics", s1.logs[4].topics, [topicOf(7)]);
    checkEq(
      "anonymous Raw log's data",
      s1.logs[4].data,
      ethers.AbiCoder.defaultAbiCoder().encode(["uint256"], [11n]),
    );
    const tagged = events.interface.parseLog(s1.logs[2]);
    checkEq("indexed string's topic is its hash", tagged.args.tag.hash, ethers.id("alpha"));
    checkEq("Tagged non-indexed args", [tagged.args.delta, tagged.args.data], [-11n, "0x0000000000000007"]);
  },
  true,
);
const allReceipts = ["t1", "t2", "t3", "s1", "s2"].map((n) => receipts[n]);
const lastBlock = Math.max(...allReceipts.map((r) => r.blockNumber));
const firstBlock = tokenDeploy.receipt.blockNumber;
out.blocks = {
  deployToken: firstBlock,
  deployEvents: eventsDeploy.receipt.blockNumber,
  ...Object.fromEntries(Object.entries(receipts).map(([k, r]) => [k, r.blockNumber])),
};
await part("reader catches up", () => readerAt(lastBlock));

// Balances on the reading node, now and at past blocks.
await part("balances", async () => {
  const t = token.connect(reader);
  const now = await Promise.all([w0, w1, w2].map((w) => t.balanceOf(w.address)));
  checkEq("token balances", now, [SUPPLY - 150n, 70n, 80n]);
  checkEq("totalSupply", await t.totalSupply(), SUPPLY);
  const b = receipts.t1.blockNumber;
  checkEq("balance before t1's block", await t.balanceOf(w1.address, { blockTag: b - 1 }), 0n);
  checkEq("balance at t1's block", await t.balanceOf(w1.address, { blockTag: b }), 100n);
  const e = events.connect(reader);
  checkEq("stored values", [await e.values(7n), await e.values(8n), await e.count()], [11n, 12n, 2n]);
  // A receipt read from the reading node is the sending node's.
  const again = await reader.getTransactionReceipt(receipts.s1.hash);
  checkEq("s1 receipt on the reading node", keys(again.logs), keys(receipts.s1.logs));
  checkEq("s1 block hash on the reading node", again.blockHash, receipts.s1.blockHash);
});

// eth_getLogs, through contract.queryFilter and provider.getLogs.
await part("queryFilter", async () => {
  const t = token.connect(reader);
  const e = events.connect(reader);
  const hashes = (evs) => evs.map((ev) => ev.transactionHash);
  const q = (c, filter, from = firstBlock, to = lastBlock) =>
    within(c.queryFilter(filter, from, to), "eth_getLogs");
  const deployHash = tokenDeploy.receipt.hash;
  const { t1, t2, t3, s1, s2 } = receipts;
  const all = await q(t, t.filters.Transfer());
  checkEq("Transfer: all four", hashes(all), [deployHash, t1.hash, t2.hash, t3.hash]);
  checkEq(
    "Transfer: decoded args",
    all.map((ev) => [ev.eventName, ...ev.args]),
    [
      ["Transfer", ethers.ZeroAddress, w0.address, SUPPLY],
      ["Transfer", w0.address, w1.address, 100n],
      ["Transfer", w0.address, w2.address, 50n],
      ["Transfer", w1.address, w2.address, 30n],
    ],
  );
  const transferLogs = [tokenDeploy.receipt, t1, t2, t3].flatMap((r) => r.logs);
  checkEq("Transfer: the logs are the receipts'", keys(all), keys(transferLogs));
  checkEq("Transfer(from account 0)", hashes(await q(t, t.filters.Transfer(w0.address))), [t1.hash, t2.hash]);
  const toW2 = await q(t, t.filters.Transfer(null, w2.address));
  checkEq("Transfer(any, to account 2)", hashes(toW2), [t2.hash, t3.hash]);
  const mint = await q(t, t.filters.Transfer(ethers.ZeroAddress));
  checkEq("Transfer(from zero): the mint", hashes(mint), [deployHash]);
  checkEq(
    "Transfer([account 0, account 1], account 2): OR in a position",
    hashes(await q(t, t.filters.Transfer([w0.address, w1.address], w2.address))),
    [t2.hash, t3.hash],
  );
  const toSelf = await q(t, t.filters.Transfer(w1.address, w1.address));
  checkEq("Transfer(account 1, account 1): none", hashes(toSelf), []);
  const inT3 = await q(t, t.filters.Transfer(), t3.blockNumber, t3.blockNumber);
  checkEq("Transfer in t3's block only", hashes(inT3), [t3.hash]);
  checkEq(
    "Transfer before t3's block",
    hashes(await q(t, t.filters.Transfer(), firstBlock, t3.blockNumber - 1)),
    [deployHash, t1.hash, t2.hash],
  );
  const toLatest = await within(t.queryFilter(t.filters.Transfer(), t1.blockNumber), "eth_getLogs");
  checkEq("Transfer from a block to latest", hashes(toLatest), [t1.hash, t2.hash, t3.hash]);
  checkEq("Stored(any, key 7)", hashes(await q(e, e.filters.Stored(null, 7n))), [s1.hash]);
  checkEq("Stored(account 1)", hashes(await q(e, e.filters.Stored(w1.address))), [s2.hash]);
  const beta = await q(e, e.filters.Tagged("beta"));
  checkEq("Tagged(\"beta\"): an indexed string", hashes(beta), [s2.hash]);
  checkEq("Tagged(\"beta\") args", beta.map((ev) => [ev.args.who, ev.args.delta]), [[w1.address, -12n]]);
  const plain = [s1.logs[3], s2.logs[3]].sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
  checkEq(
    "Plain: no indexed args",
    (await q(e, "Plain")).map((ev) => [ev.transactionHash, ...ev.args]),
    plain.map((l) => [l.transactionHash, ...e.interface.parseLog(l).args]),
  );

  // provider.getLogs with raw filters.
  const getLogs = (f) => within(reader.getLogs(f), "eth_getLogs");
  const range = { fromBlock: firstBlock, toBlock: lastBlock };
  const anon = await getLogs({ address: out.events, topics: [topicOf(7)], ...range });
  checkEq("anonymous log by its first topic", keys(anon), keys([s1.logs[4]]));
  const both = await getLogs({ address: [out.token, out.events], ...range });
  const expectedBoth = [tokenDeploy.receipt, t1, t2, t3, s1, s2]
    .flatMap((r) => r.logs)
    .sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
  checkEq("getLogs with two addresses: every receipt's log, in order", keys(both), keys(expectedBoth));
  const byHash = await getLogs({ blockHash: s1.blockHash, address: out.events });
  checkEq(
    "getLogs by blockHash",
    keys(byHash),
    keys(expectedBoth.filter((l) => l.blockHash === s1.blockHash && l.address === out.events)),
  );
  const none = await getLogs({ address: out.events, topics: [ethers.id("Nothing()")], ...range });
  checkEq("getLogs with an unmatched topic", none, []);
  const otherAddress = await getLogs({ address: w2.address, ...range });
  checkEq("getLogs for an address without logs", otherAddress, []);
});

// Reverts of eth_call and eth_estimateGas, decoded by ethers.
await part("reverts", async () => {
  const t = token.connect(reader);
  const e = events.connect(reader);
  const from = { from: w2.address };
  let err = await failure("require string: no revert", () =>
    t.transferFrom.staticCall(w0.address, w2.address, 1n, from),
  );
  checkEq("require string: reason", err && [err.code, err.reason, err.revert?.name, err.revert?.signature], [
    "CALL_EXCEPTION",
    "allowance exceeded",
    "Error",
    "Error(string)",
  ]);
  err = await failure("custom error: no revert", () => t.transfer.staticCall(w0.address, 10n ** 30n, from));
  checkEq("custom error InsufficientBalance(80, 10^30)", revertOf(err), [
    "InsufficientBalance",
    80n,
    10n ** 30n,
  ]);
  err = await failure("TooLarge: no revert", () => e.store.staticCall(1n, 5000n, "x", from));
  checkEq("custom error with an address TooLarge(5000, 1000, account 2)", revertOf(err), [
    "TooLarge",
    5000n,
    1000n,
    w2.address,
  ]);
  err = await failure("note is empty: no revert", () => e.store.staticCall(1n, 5n, "", from));
  checkEq("require in a state-changing function", err?.reason, "note is empty");
  err = await failure("Empty: no revert", () => e.get.staticCall(99n));
  checkEq("custom error Empty(99) from a view", revertOf(err), ["Empty", 99n]);
  checkEq("the view without an error", await e.get(7n), 11n);
  err = await failure("odd number: no revert", () => e.half.staticCall(3n));
  checkEq("require in a pure function", err?.reason, "odd number");
  checkEq("the pure function without an error", await e.half(4n), 2n);
  err = await failure("panic: no revert", () => e.ratio.staticCall(1n, 0n));
  checkEq("Panic(0x12)", err && [err.revert?.name, ...(err.revert?.args ?? []).map(Number)], ["Panic", 18]);
  err = await failure("bare revert: no revert", () => e.bare.staticCall());
  checkEq("revert without data", err && [err.code, err.data, err.revert], ["CALL_EXCEPTION", "0x", null]);

  // eth_estimateGas of a call that reverts: the same error. (ethers
  // decodes only Error and Panic here; a custom error is the revert data's
  // to parse with the contract's interface.)
  err = await failure("estimateGas TooLarge: no revert", () => e.store.estimateGas(1n, 5000n, "x", from));
  const estimated = err?.data ? e.interface.parseError(err.data) : null;
  checkEq("estimateGas reverts with TooLarge", err && [err.code, ...revertOf({ revert: estimated })], [
    "CALL_EXCEPTION",
    "TooLarge",
    5000n,
    1000n,
    w2.address,
  ]);
  err = await failure("estimateGas require: no revert", () => e.half.estimateGas(3n));
  checkEq("estimateGas reverts with a require string", err?.reason, "odd number");

  // Provider-level eth_call, decoded with interface.parseError.
  const data = e.interface.encodeFunctionData("store", [1n, 5000n, "x"]);
  const call = { to: out.events, data, from: w2.address };
  err = await failure("provider.call: no revert", () => reader.call(call));
  const parsed = err?.data ? e.interface.parseError(err.data) : null;
  checkEq("interface.parseError of the revert data", parsed && [parsed.name, ...parsed.args], [
    "TooLarge",
    5000n,
    1000n,
    w2.address,
  ]);
  // What the node answers, as Ethereum nodes do: code 3, the revert data.
  const answer = await rawHttp(readUrl, "eth_call", [call, "latest"]);
  const expected = e.interface.encodeErrorResult("TooLarge", [5000n, 1000n, w2.address]);
  const error = answer.error;
  checkEq(
    "eth_call's error: code 3, execution reverted, the revert data",
    error && [error.code, error.message.startsWith("execution reverted"), error.data],
    [3, true, expected],
  );
  out.notes.rawRevert = answer;
});

// What the subscriptions delivered.
await part("subscriptions", async () => {
  if (!subscribed) throw new Error("no subscriptions");
  const { t1, t2, t3, s1, s2 } = receipts;
  const expectedBoth = [t1, t2, t3, s1, s2]
    .flatMap((r) => r.logs)
    .sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
  // A wait that ends in a failed check, not in the end of the part.
  const arrives = (name, f) => until(f, name).catch((e) => check(name, false, e.message));
  // Notifications come in order on one socket: once the last block's logs
  // are in, anything a filter should have dropped would be in too.
  await arrives("the two-address subscription's logs arrive", () => got.both.length >= expectedBoth.length);
  await arrives("newHeads up to the last block arrive", () => got.blocks.includes(lastBlock));
  await arrives("3 raw Transfer notifications arrive", () => raw.received(subIds.logs).length >= 3);
  // The other subscriptions are other sockets' or ethers' own: wait for
  // what each expects, then a little for anything extra they should not get.
  await arrives("contract.on(Transfer(from account 0)) gets 2", () => got.fromW0.length >= 2);
  await arrives("provider.on(Stored, key 7) gets 1", () => got.storedA.length >= 1);
  await arrives("contract.on(Tagged(\"beta\")) gets 1", () => got.taggedBeta.length >= 1);
  await sleep(300);
  checkEq(
    "logs subscription, two addresses: every log of the later transactions",
    keys(got.both),
    keys(expectedBoth),
  );
  checkEq(
    "contract.on(Transfer(from account 0))",
    got.fromW0.map((x) => [x.from, x.to, x.value, x.log.transactionHash]),
    [
      [w0.address, w1.address, 100n, t1.hash],
      [w0.address, w2.address, 50n, t2.hash],
    ],
  );
  checkEq(
    "contract.on(Transfer(from account 0)) logs are the receipts'",
    keys(got.fromW0.map((x) => x.log)),
    keys([...t1.logs, ...t2.logs]),
  );
  checkEq("provider.on({address, topics: [Stored, null, key 7]})", keys(got.storedA), keys([s1.logs[0]]));
  checkEq("contract.on(Tagged(\"beta\"))", keys(got.taggedBeta), keys([s2.logs[2]]));
  const blocks = got.blocks;
  check("newHeads: increasing block numbers", blocks.every((b, i) => i === 0 || b > blocks[i - 1]), blocks);
  const needed = [...new Set(allReceipts.map((r) => r.blockNumber))];
  check("newHeads: every block of the transactions", needed.every((b) => blocks.includes(b)), {
    blocks,
    needed,
  });

  // The raw notifications.
  const rawLogs = raw.received(subIds.logs).map((n) => n.result);
  checkEq("raw logs notifications", keys(rawLogs), keys([...t1.logs, ...t2.logs, ...t3.logs]));
  checkEq("raw logs: removed is false", rawLogs.map((l) => l.removed), [false, false, false]);
  const heads = raw.received(subIds.heads).map((n) => n.result);
  const fields = [
    "hash",
    "parentHash",
    "number",
    "timestamp",
    "stateRoot",
    "transactionsRoot",
    "receiptsRoot",
    "logsBloom",
    "miner",
    "gasLimit",
    "gasUsed",
    "extraData",
    "baseFeePerGas",
  ];
  const missing = [...new Set(heads.flatMap((h) => fields.filter((f) => !(f in h))))];
  checkEq("newHeads: standard header fields", missing, []);
  const head = heads.find((h) => Number(BigInt(h.number)) === s1.blockNumber);
  if (check("raw newHeads has s1's block", head != null, heads.map((h) => h.number))) {
    const block = await rawHttp(readUrl, "eth_getBlockByNumber", [head.number, false]);
    const pick = (o) => Object.fromEntries(fields.map((f) => [f, o?.[f]]));
    checkEq("newHeads header = eth_getBlockByNumber's", pick(head), pick(block.result));
    checkEq("newHeads hash = the receipt's block hash", head.hash, s1.blockHash);
  }
  const linked = heads.every((h, i) => {
    const prev = heads[i - 1];
    return i === 0 || BigInt(h.number) !== BigInt(prev.number) + 1n || h.parentHash === prev.hash;
  });
  const chain = heads.map((h) => [h.number, h.hash, h.parentHash]);
  check("newHeads: consecutive heads link by parentHash", linked, chain);

  // eth_unsubscribe: true, and nothing more for that id after the answer.
  const unsub = await raw.request("eth_unsubscribe", [subIds.heads]);
  checkEq("eth_unsubscribe answers true", unsub.result, true);
  const r = await sent("after unsubscribe", w0.sendTransaction({ to: w1.address, value: 1n }));
  await arrives("ethers' newHeads after unsubscribing", () => got.blocks.some((b) => b >= r.blockNumber));
  await sleep(300);
  const late = raw.received(subIds.heads).filter((n) => n.seq > unsub.seq).map((n) => n.result.number);
  checkEq("no newHeads after eth_unsubscribe", late, []);
  const again = await raw.request("eth_unsubscribe", [subIds.heads]);
  out.notes.unsubscribeTwice = again;
});

await finish(0);
