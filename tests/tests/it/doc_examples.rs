//! The examples of `docs/rpc.md` against a real `palisade dev` node.
//!
//! Convention (the document says the same under "Examples"):
//!
//! - A fenced `json` block right after a line `<!-- example -->` is sent
//!   over HTTP, one after `<!-- example ws -->` over one WebSocket
//!   connection. Each line is one JSON-RPC message. A line with both
//!   `method` and `id` is a request the test sends; every other line is the
//!   next message the node must send back (a response, or for WebSocket a
//!   subscription notification). Notifications that arrive while a
//!   response is awaited are skipped (a new head can come at any time).
//! - A block after `<!-- json: action -->` lists actions as they appear in
//!   a transaction's JSON; each must read as an `Action` and write back the
//!   same, and every variant must be there. Any other `json` block must be
//!   marked `<!-- not run: why -->`; every line of every block must be
//!   complete JSON (no `...`).
//! - A response must have exactly the documented keys at every level and
//!   the same JSON types. Values are compared too, except those that differ
//!   from run to run: values of the keys in [`VARYING`] (block hashes,
//!   heights, times, keys of the node's random validator key, ...), the
//!   second item of an event attribute whose name is in [`VARYING`], and
//!   the whole result of the methods in [`VARYING_RESULT`]. For those only
//!   the type is checked (and an array's items against the first
//!   documented item). Transactions are signed by the well-known dev
//!   accounts, so their bytes, hashes and receipts are the document's.
//! - Blocks that submit transactions (`tx_submit*`) run first, in document
//!   order, so that the other examples read a chain that holds them; the
//!   rest run in document order. After each block the test waits for the
//!   mempool to empty, so each example sees its predecessors committed.
//! - Where a varying value of a response (a block's `hash` or `height`, a
//!   subscription id) was documented as X and is Y on this node, later
//!   requests that say X are sent with Y: that is how the document's
//!   `chain_getBlock` can name the block its `tx_submitAndWait` example
//!   committed.
//! - Every method `rpc_methods` lists has an example.
//!
//! `PALISADE_DOC_EXAMPLES=write` rewrites the examples in `docs/rpc.md` with
//! this node's answers instead of comparing (to update the document after
//! a deliberate change; review the diff).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use palisade_tests::{raw_post, rpc_call, DevNode};
use palisade_types::Action;
use serde_json::Value;

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rpc.md");

/// Keys whose values differ between runs; only their type is compared.
const VARYING: &[&str] = &[
    "hash",
    "height",
    "time",
    "round",
    "latestHeight",
    "latestBlockHash",
    "latestBlockTime",
    "lastBlockAgeMs",
    "syncTarget",
    "genesisHash",
    "genesis_time_ms",
    "peerId",
    "version",
    "validator",
    "proposer",
    "publicKey",
    "consensus_key",
    "node_key",
    "last_block_hash",
    "state_root",
    "validators_hash",
    "next_validators_hash",
    "last_commit_hash",
    "block_hash",
    "signatures",
    "stateRoot",
    "siblings",
    "leaf",
    "subscription",
    "parentHash",
    "timestamp",
    "oldestBlock",
    "gasUsedRatio",
    "blockHash",
    "blockNumber",
    "number",
    "published",
    "unpublished",
];

/// Methods whose whole result varies (a height, a subscription id).
const VARYING_RESULT: &[&str] = &[
    "chain_getHeight",
    "eth_blockNumber",
    "web3_clientVersion",
    "chain_subscribeNewHeads",
    "tx_subscribeStatus",
    "eth_subscribe",
    "file_subscribeStatus",
    // Heights and tallies of the last blocks.
    "validator_getActivity",
];

/// Varying values a later request may name: block hashes and heights,
/// subscription ids.
const LEARNED: &[&str] = &["hash", "height", "subscription id"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Ws,
    Action,
}

#[derive(Debug)]
struct Example {
    kind: Kind,
    /// Line number (1-based) of the block's first line in the document.
    line: usize,
    /// Index of the block's first and one past its last content line.
    start: usize,
    end: usize,
    messages: Vec<Value>,
}

impl Example {
    fn first_method(&self) -> &str {
        self.messages
            .iter()
            .find_map(|m| m.get("id").and(m["method"].as_str()))
            .unwrap_or("")
    }
}

fn is_request(m: &Value) -> bool {
    m.get("method").is_some() && m.get("id").is_some()
}

/// The document's examples, and the problems with its blocks.
fn parse(doc: &str) -> (Vec<Example>, Vec<String>) {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start().starts_with("```json") {
            let marker = if i > 0 { lines[i - 1].trim() } else { "" };
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && !lines[end].trim_start().starts_with("```") {
                end += 1;
            }
            let mut messages = Vec::new();
            for (n, l) in lines[start..end].iter().enumerate() {
                if l.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(l) {
                    Ok(v) => messages.push(v),
                    Err(e) => problems.push(format!(
                        "rpc.md line {}: not one complete JSON value: {e}",
                        start + n + 1
                    )),
                }
            }
            let kind = match marker {
                "<!-- example -->" => Some(Kind::Http),
                "<!-- example ws -->" => Some(Kind::Ws),
                "<!-- json: action -->" => Some(Kind::Action),
                m if m.starts_with("<!-- not run:") => None,
                _ => {
                    problems.push(format!(
                        "rpc.md line {}: a json block needs a marker line before it",
                        i + 1
                    ));
                    None
                }
            };
            if let Some(kind) = kind {
                out.push(Example {
                    kind,
                    line: start + 1,
                    start,
                    end,
                    messages,
                });
            }
            i = end + 1;
        } else {
            i += 1;
        }
    }
    (out, problems)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Documented varying values and what they are on this node.
type Learned = BTreeMap<String, Value>;

/// Compares `live` with `doc` (see the module documentation); problems go
/// to `errs`, varying values a later request may name to `learned`.
fn compare(
    doc: &Value,
    live: &Value,
    path: &str,
    key: &str,
    varying: bool,
    errs: &mut Vec<String>,
    learned: &mut Learned,
) {
    if type_name(doc) != type_name(live) {
        errs.push(format!(
            "{path}: documented {} ({doc}), got {} ({live})",
            type_name(doc),
            type_name(live)
        ));
        return;
    }
    match (doc, live) {
        (Value::Object(d), Value::Object(l)) => {
            for k in d.keys().filter(|k| !l.contains_key(*k)) {
                errs.push(format!("{path}: documented key {k:?} is missing"));
            }
            for k in l.keys().filter(|k| !d.contains_key(*k)) {
                errs.push(format!("{path}: key {k:?} is not documented"));
            }
            for (k, dv) in d {
                if let Some(lv) = l.get(k) {
                    let v = varying || VARYING.contains(&k.as_str());
                    compare(dv, lv, &format!("{path}.{k}"), k, v, errs, learned);
                }
            }
        }
        (Value::Array(d), Value::Array(l)) if key == "attributes" && !varying => {
            if d.len() != l.len() {
                errs.push(format!(
                    "{path}: documented {} attributes, got {}",
                    d.len(),
                    l.len()
                ));
                return;
            }
            for (n, (dv, lv)) in d.iter().zip(l).enumerate() {
                let name = dv.get(0).and_then(Value::as_str).unwrap_or("");
                let p = format!("{path}[{n}]");
                match (dv.as_array(), lv.as_array()) {
                    (Some(dp), Some(lp)) if dp.len() == 2 && lp.len() == 2 => {
                        compare(&dp[0], &lp[0], &p, "", false, errs, learned);
                        let v = VARYING.contains(&name);
                        compare(&dp[1], &lp[1], &p, name, v, errs, learned);
                    }
                    _ => errs.push(format!("{p}: an attribute is a [name, value] pair")),
                }
            }
        }
        (Value::Array(d), Value::Array(l)) => {
            if varying {
                match d.first() {
                    Some(first) => {
                        for (n, lv) in l.iter().enumerate() {
                            compare(first, lv, &format!("{path}[{n}]"), key, true, errs, learned);
                        }
                    }
                    None if !l.is_empty() => {
                        errs.push(format!("{path}: documented empty, got {live}"))
                    }
                    None => {}
                }
                return;
            }
            if d.len() != l.len() {
                errs.push(format!(
                    "{path}: documented {} items, got {} ({live})",
                    d.len(),
                    l.len()
                ));
                return;
            }
            for (n, (dv, lv)) in d.iter().zip(l).enumerate() {
                compare(dv, lv, &format!("{path}[{n}]"), key, false, errs, learned);
            }
        }
        _ if varying => {
            if LEARNED.contains(&key) && doc != live {
                learned.insert(doc.to_string(), live.clone());
            }
        }
        _ => {
            if doc != live {
                errs.push(format!("{path}: documented {doc}, got {live}"));
            }
        }
    }
}

/// `v` with every documented varying value replaced by this node's.
fn substitute(v: &Value, learned: &Learned) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, learned)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), substitute(x, learned)))
                .collect(),
        ),
        other => learned
            .get(&other.to_string())
            .cloned()
            .unwrap_or_else(|| other.clone()),
    }
}

/// A request line as sent: the document's text, with substituted values
/// replaced in it (so the written document keeps its field order).
fn request_text(doc_line: &str, doc: &Value, sent: &Value) -> String {
    let mut text = doc_line.trim().to_string();
    if doc != sent {
        let (Some(d), Some(s)) = (doc["params"].as_array(), sent["params"].as_array()) else {
            return sent.to_string();
        };
        for (dv, sv) in d.iter().zip(s) {
            if dv != sv {
                text = text.replacen(&dv.to_string(), &sv.to_string(), 1);
            }
        }
    }
    text
}

fn http_body(addr: &str, body: &str) -> String {
    let answer = raw_post(addr, body.as_bytes());
    answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default()
}

/// The least WebSocket client that runs the examples: text frames only
/// (RFC 6455; client frames masked, as the protocol requires).
struct Ws {
    s: TcpStream,
}

impl Ws {
    fn connect(addr: &str) -> Ws {
        let mut s = TcpStream::connect(addr).expect("websocket connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).expect("websocket handshake");
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "handshake: {head}");
        Ws { s }
    }

    fn send(&mut self, text: &str) {
        let p = text.as_bytes();
        let mut f = vec![0x81u8];
        match p.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65_536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x5a, 0x17, 0xc3, 0x99];
        f.extend_from_slice(&mask);
        f.extend(p.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f).unwrap();
    }

    /// The next text message (pings and other control frames skipped).
    fn recv(&mut self) -> String {
        loop {
            let mut h = [0u8; 2];
            self.s.read_exact(&mut h).expect("websocket message");
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.s.read_exact(&mut b).unwrap();
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.s.read_exact(&mut b).unwrap();
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; len as usize];
            self.s.read_exact(&mut payload).unwrap();
            match h[0] & 0x0f {
                0x1 => return String::from_utf8(payload).unwrap(),
                0x8 => panic!("websocket closed by the node"),
                _ => {}
            }
        }
    }
}

/// What one example produced: each line's text as it should be written,
/// and the problems found.
fn run_example(
    node: &DevNode,
    doc_lines: &[&str],
    ex: &Example,
    learned: &mut Learned,
) -> (Vec<String>, Vec<String>) {
    let mut written = Vec::new();
    let mut errs = Vec::new();
    let lines: Vec<&str> = doc_lines[ex.start..ex.end]
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut ws = (ex.kind == Kind::Ws).then(|| Ws::connect(&node.rpc));
    let mut pending_http: Option<String> = None;
    let mut last_method = String::new();
    for (doc_line, msg) in lines.iter().zip(&ex.messages) {
        if is_request(msg) {
            let sent = substitute(msg, learned);
            let text = request_text(doc_line, msg, &sent);
            last_method = msg["method"].as_str().unwrap_or("").to_string();
            match &mut ws {
                Some(ws) => ws.send(&text),
                None => pending_http = Some(http_body(&node.rpc, &text)),
            }
            written.push(text);
            continue;
        }
        let expects_response = msg.get("id").is_some();
        let got = match (&mut ws, pending_http.take()) {
            (None, Some(body)) => body,
            (None, None) => {
                errs.push("an HTTP request has one response".into());
                break;
            }
            (Some(ws), _) => loop {
                let m = ws.recv();
                let is_response = serde_json::from_str::<Value>(&m)
                    .map(|v| v.get("id").is_some())
                    .unwrap_or(true);
                if is_response || !expects_response {
                    break m;
                }
            },
        };
        let live: Value = match serde_json::from_str(&got) {
            Ok(v) => v,
            Err(e) => {
                errs.push(format!("answer is not JSON ({e}): {got}"));
                break;
            }
        };
        let mut e = Vec::new();
        if expects_response && VARYING_RESULT.contains(&last_method.as_str()) {
            // Only the envelope is compared exactly.
            let mut d = msg.clone();
            let mut l = live.clone();
            if let (Some(dr), Some(lr)) = (d.get_mut("result"), l.get_mut("result")) {
                let key = if last_method.contains("_subscribe") {
                    "subscription id"
                } else {
                    "result"
                };
                compare(dr, lr, "result", key, true, &mut e, learned);
                *dr = Value::Null;
                *lr = Value::Null;
            }
            compare(&d, &l, "", "", false, &mut e, learned);
        } else {
            compare(msg, &live, "", "", false, &mut e, learned);
        }
        errs.extend(e.into_iter().map(|p| format!("{p}\n    answer: {got}")));
        written.push(got);
    }
    (written, errs)
}

fn check_actions(ex: &Example) -> Vec<String> {
    // Exhaustive: a new action fails to compile here until it is documented.
    fn name(a: &Action) -> &'static str {
        match a {
            Action::Transfer { .. } => "transfer",
            Action::Mint { .. } => "mint",
            Action::Burn { .. } => "burn",
            Action::Put { .. } => "put",
            Action::Delete { .. } => "delete",
            Action::GrantRole { .. } => "grant_role",
            Action::RevokeRole { .. } => "revoke_role",
            Action::AddValidator { .. } => "add_validator",
            Action::RemoveValidator { .. } => "remove_validator",
            Action::SetValidatorPower { .. } => "set_validator_power",
            Action::SetParam { .. } => "set_param",
            Action::EvmCall { .. } => "evm_call",
            Action::EvmCreate { .. } => "evm_create",
            Action::GrantEvmRole { .. } => "grant_evm_role",
            Action::RevokeEvmRole { .. } => "revoke_evm_role",
            Action::FilePublish { .. } => "file_publish",
            Action::FileUnpublish { .. } => "file_unpublish",
        }
    }
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for m in &ex.messages {
        match serde_json::from_value::<Action>(m.clone()) {
            Ok(a) => {
                seen.insert(name(&a));
                let back = serde_json::to_value(&a).unwrap();
                if &back != m {
                    errs.push(format!("action {m} is written {back}"));
                }
            }
            Err(e) => errs.push(format!("{m} is not an action: {e}")),
        }
    }
    if seen.len() != 17 {
        errs.push(format!("only these actions are shown: {seen:?}"));
    }
    errs
}

fn wait_mempool_empty(node: &DevNode) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if rpc_call(&node.rpc, "mempool_status", serde_json::json!([])).is_ok_and(|s| s["txs"] == 0)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the mempool did not empty");
}

fn wait_blocks(node: &DevNode, n: u64) {
    let height = || {
        rpc_call(&node.rpc, "chain_getHeight", serde_json::json!([]))
            .ok()
            .and_then(|h| h.as_u64())
            .unwrap_or(0)
    };
    let target = height() + n;
    let deadline = Instant::now() + Duration::from_secs(30);
    while height() < target {
        assert!(Instant::now() < deadline, "no new blocks");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rpc_md_examples_match_a_dev_node() {
    let write = std::env::var("PALISADE_DOC_EXAMPLES").is_ok_and(|v| v == "write");
    let doc = std::fs::read_to_string(DOC_PATH).unwrap();
    let doc_lines: Vec<&str> = doc.lines().collect();
    let (examples, mut problems) = parse(&doc);

    // The dev defaults, as the document's examples were taken.
    // Validator-set changes take effect heights after their block: the
    // examples wait for blocks, so this chain makes them while idle.
    let node = DevNode::start_with_empty_blocks(200);
    let mut learned = Learned::new();
    let mut rewritten: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let submits =
        |e: &&Example| e.kind != Kind::Action && e.first_method().starts_with("tx_submit");
    let order: Vec<&Example> = examples
        .iter()
        .filter(submits)
        .chain(examples.iter().filter(|e| !submits(e)))
        .collect();
    let mut submitted = true;
    for ex in order {
        if ex.kind == Kind::Action {
            problems.extend(
                check_actions(ex)
                    .into_iter()
                    .map(|p| format!("rpc.md line {}: {p}", ex.line)),
            );
            continue;
        }
        if submitted && !submits(&ex) {
            // Validator-set changes of the examples take effect some
            // heights after their block.
            submitted = false;
            wait_blocks(&node, 4);
        }
        let (written, errs) = run_example(&node, &doc_lines, ex, &mut learned);
        problems.extend(
            errs.into_iter()
                .map(|p| format!("rpc.md line {} ({}): {p}", ex.line, ex.first_method())),
        );
        rewritten.insert(ex.start, written);
        wait_mempool_empty(&node);
    }

    // Every method has an example.
    let methods = rpc_call(&node.rpc, "rpc_methods", serde_json::json!([])).unwrap();
    let shown: BTreeSet<&str> = examples
        .iter()
        .flat_map(|e| e.messages.iter())
        .filter(|m| is_request(m))
        .filter_map(|m| m["method"].as_str())
        .collect();
    for m in methods["methods"].as_array().unwrap() {
        let m = m.as_str().unwrap();
        if !shown.contains(m) {
            problems.push(format!("rpc.md has no example of {m}"));
        }
    }

    if write {
        let mut out = Vec::new();
        let mut i = 0;
        while i < doc_lines.len() {
            match rewritten.get(&i) {
                Some(lines) => {
                    out.extend(lines.iter().cloned());
                    i = examples
                        .iter()
                        .find(|e| e.start == i)
                        .map_or(i + 1, |e| e.end);
                }
                None => {
                    out.push(doc_lines[i].to_string());
                    i += 1;
                }
            }
        }
        std::fs::write(DOC_PATH, out.join("\n") + "\n").unwrap();
        eprintln!("rewrote {DOC_PATH}; remaining problems: {problems:#?}");
        return;
    }
    assert!(
        problems.is_empty(),
        "docs/rpc.md's examples differ from the node:\n{}",
        problems.join("\n")
    );
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-`
/// and `_` dropped, spaces made `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for l in text.lines() {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !l.starts_with('#') {
            continue;
        }
        let base = slug(l.trim_start_matches('#'));
        let mut a = base.clone();
        let mut n = 0;
        while out.contains(&a) {
            n += 1;
            a = format!("{base}-{n}");
        }
        out.insert(a);
    }
    out
}

/// Every relative link in `docs/` names a file that exists and, if it has
/// one, an anchor of a heading in it.
#[test]
fn doc_links_resolve() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs"));
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut fenced = false;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            if fenced {
                continue;
            }
            for part in line.split("](").skip(1) {
                let Some(target) = part.split(')').next() else {
                    continue;
                };
                // Not a link: `[8]([S]B − R − [k]A)` in a formula.
                if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                    continue;
                }
                let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
                let file_path = if file.is_empty() {
                    path.clone()
                } else {
                    dir.join(file)
                };
                if !file_path.is_file() {
                    problems.push(format!("{name}:{}: {target}: no such file", n + 1));
                    continue;
                }
                // Images and other files: that they exist is enough.
                let Ok(linked) = std::fs::read_to_string(&file_path) else {
                    continue;
                };
                if !anchor.is_empty() && !anchors(&linked).contains(anchor) {
                    problems.push(format!("{name}:{}: {target}: no such heading", n + 1));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `docs/state.md` lists every receipt code the runtime has, with the
/// reason the RPC gives, and `docs/rpc.md` lists every reason.
#[test]
fn receipt_codes_are_documented() {
    use palisade_node::rpc_backend::reason;
    use palisade_runtime::TxError;
    use palisade_types::KeyError;

    // Its position in `all` below; exhaustive, so a new code fails to
    // compile here until it is added (and documented).
    fn position(e: &TxError) -> usize {
        match e {
            TxError::WrongChainId { .. } => 0,
            TxError::BadSignature => 1,
            TxError::BadNonce { .. } => 2,
            TxError::TooLarge { .. } => 3,
            TxError::UnknownSigner => 4,
            TxError::NonceTooFarAhead { .. } => 5,
            TxError::Unauthorized(_) => 6,
            TxError::InsufficientFunds { .. } => 7,
            TxError::Overflow => 8,
            TxError::ZeroAmount => 9,
            TxError::ValueTooLarge { .. } => 10,
            TxError::NamespaceOwned => 11,
            TxError::KeyNotFound => 12,
            TxError::EmptyNamespace => 13,
            TxError::LastAdmin => 14,
            TxError::ValidatorExists => 15,
            TxError::ValidatorNotFound => 16,
            TxError::InvalidPower { .. } => 17,
            TxError::ValidatorChangeTooLarge => 18,
            TxError::InvalidParam(_) => 19,
            TxError::InvalidValidatorKey { .. } => 20,
            TxError::NotValidatorOperator => 21,
            TxError::NodeKeyExists => 22,
            TxError::TooManyValidators { .. } => 23,
            TxError::TotalPowerTooLarge { .. } => 24,
            TxError::ValidatorChangeConflict => 25,
            TxError::RoleNotForEvmAddress(_) => 26,
            TxError::EvmReverted { .. } => 27,
            TxError::EvmHalted(_) => 28,
            TxError::EvmNotExecutable(_) => 29,
            TxError::GasLimitTooHigh { .. } => 30,
            TxError::BlockGasExhausted { .. } => 31,
            TxError::GasPriceTooLow { .. } => 32,
            TxError::EthTxMalformed(_) => 33,
            TxError::FileExists => 34,
            TxError::FileNotFound => 35,
            TxError::FileQuotaExceeded { .. } => 36,
            TxError::FileInvalid(_) => 37,
            TxError::FileWithdrawn => 38,
            TxError::NotFilePublisher => 39,
        }
    }
    let all = [
        TxError::WrongChainId {
            expected: String::new(),
            found: String::new(),
        },
        TxError::BadSignature,
        TxError::BadNonce {
            expected: 0,
            got: 0,
        },
        TxError::TooLarge { size: 0, max: 0 },
        TxError::UnknownSigner,
        TxError::NonceTooFarAhead {
            expected: 0,
            got: 0,
        },
        TxError::Unauthorized("admin"),
        TxError::InsufficientFunds {
            balance: 0,
            needed: 0,
        },
        TxError::Overflow,
        TxError::ZeroAmount,
        TxError::ValueTooLarge { size: 0, max: 0 },
        TxError::NamespaceOwned,
        TxError::KeyNotFound,
        TxError::EmptyNamespace,
        TxError::LastAdmin,
        TxError::ValidatorExists,
        TxError::ValidatorNotFound,
        TxError::InvalidPower { max: 0 },
        TxError::ValidatorChangeTooLarge,
        TxError::InvalidParam(""),
        TxError::InvalidValidatorKey {
            key: "",
            reason: KeyError::SmallOrder,
        },
        TxError::NotValidatorOperator,
        TxError::NodeKeyExists,
        TxError::TooManyValidators { max: 0 },
        TxError::TotalPowerTooLarge { max: 0 },
        TxError::ValidatorChangeConflict,
        TxError::RoleNotForEvmAddress(""),
        TxError::EvmReverted { reason: None },
        TxError::EvmHalted(""),
        TxError::EvmNotExecutable(""),
        TxError::GasLimitTooHigh { limit: 0, max: 0 },
        TxError::BlockGasExhausted { left: 0, limit: 0 },
        TxError::GasPriceTooLow { price: 0, min: 0 },
        TxError::EthTxMalformed(String::new()),
        TxError::FileExists,
        TxError::FileNotFound,
        TxError::FileQuotaExceeded {
            used: 0,
            size: 0,
            quota: 0,
        },
        TxError::FileInvalid(""),
        TxError::FileWithdrawn,
        TxError::NotFilePublisher,
    ];
    for (i, e) in all.iter().enumerate() {
        assert_eq!(position(e), i, "{e:?} is out of place");
    }
    let state = include_str!("../../../docs/state.md");
    let rpc = include_str!("../../../docs/rpc.md");
    let rows: Vec<&str> = state
        .lines()
        .filter(|l| {
            l.strip_prefix("| ")
                .and_then(|r| r.split(' ').next())
                .is_some_and(|c| c.parse::<u16>().is_ok())
        })
        .collect();
    assert_eq!(rows.len(), all.len(), "state.md's code table: {rows:#?}");
    let rejected = rpc
        .lines()
        .find(|l| l.starts_with("| -32002 |"))
        .expect("rpc.md's -32002 row");
    for e in &all {
        let row = format!("| {} | `{}` |", e.code(), reason(e));
        assert!(
            rows.iter().any(|r| r.starts_with(&row)),
            "state.md lacks {row}"
        );
        assert!(
            rejected.contains(&format!("`{}`", reason(e))),
            "rpc.md's -32002 row lacks {}",
            reason(e)
        );
    }
    assert!(rejected.contains("`nonce_pending`"));
}
