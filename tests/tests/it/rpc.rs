//! Every JSON-RPC method against a running `palisade dev` node, over HTTP
//! and WebSocket, and the errors bad requests get.

use std::time::Duration;

use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use palisade_node::cli::devnet::dev_account;
use palisade_rpc::types::{HeadResponse, TxStatus};
use palisade_tests::{rpc_call, DevNode};
use palisade_types::{encode, Action, Address, Hash, Signature, Transaction};
use serde_json::{json, Value};

fn transfer(node: &DevNode, from: u16, nonce: u64, to: Address, amount: u128) -> String {
    let key = dev_account(from);
    let tx = Transaction {
        chain_id: node.chain_id(),
        nonce,
        signer: key.address(),
        action: Action::Transfer { to, amount },
    }
    .sign(&key);
    format!("0x{}", hex::encode(encode(&tx)))
}

fn call(node: &DevNode, method: &str, params: Value) -> Value {
    rpc_call(&node.rpc, method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
}

fn call_err(node: &DevNode, method: &str, params: Value) -> Value {
    match rpc_call(&node.rpc, method, params) {
        Ok(v) => panic!("{method} succeeded: {v}"),
        Err(e) => e,
    }
}

#[test]
fn every_method_over_http() {
    let node = DevNode::start();
    let health = call(&node, "system_health", json!([]));
    assert_eq!(health["ok"], true);
    let status = call(&node, "system_status", json!([]));
    assert_eq!(status["chainId"], "palisade-dev");
    assert!(status["validator"].is_string());
    let methods = call(&node, "rpc_methods", json!([]));
    for m in [
        "system_health",
        "system_status",
        "rpc_methods",
        "chain_getHeight",
        "chain_getBlock",
        "chain_getBlockTxHashes",
        "chain_getCommit",
        "chain_getGenesis",
        "chain_subscribeNewHeads",
        "tx_submit",
        "tx_submitBatch",
        "tx_submitAndWait",
        "tx_get",
        "tx_getReceipt",
        "tx_subscribeStatus",
        "state_getAccount",
        "state_get",
        "validator_getSet",
        "mempool_status",
    ] {
        assert!(
            methods["methods"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == m),
            "rpc_methods lacks {m}"
        );
    }
    let height = call(&node, "chain_getHeight", json!([])).as_u64().unwrap();
    assert!(height >= 1);
    let b1 = call(&node, "chain_getBlock", json!([1]));
    assert_eq!(b1["block"]["header"]["height"], 1);
    let by_hash = call(&node, "chain_getBlock", json!([b1["hash"]]));
    assert_eq!(by_hash, b1);
    assert!(call(&node, "chain_getBlock", json!([1_000_000])).is_null());
    let c1 = call(&node, "chain_getCommit", json!([1]));
    assert_eq!(c1["commit"]["block_hash"], b1["hash"]);
    let genesis = call(&node, "chain_getGenesis", json!([]));
    assert_eq!(genesis["chain_id"], "palisade-dev");

    // Transactions: submit, then find it pending or committed.
    let to = Address([9; 32]);
    let tx0 = transfer(&node, 1, 0, to, 250);
    let submitted = call(&node, "tx_submit", json!([tx0]));
    let hash = submitted["hash"].clone();
    let got = call(&node, "tx_get", json!([hash]));
    assert_eq!(got["hash"], hash);
    let receipt = call(
        &node,
        "tx_submitAndWait",
        json!([transfer(&node, 1, 1, to, 50), 20_000]),
    );
    assert_eq!(receipt["success"], true, "{receipt}");
    let r0 = call(&node, "tx_getReceipt", json!([hash]));
    assert_eq!(r0["success"], true, "{r0}");
    assert!(call(&node, "tx_getReceipt", json!([Hash([1; 32])])).is_null());
    assert!(call(&node, "tx_get", json!([Hash([1; 32])])).is_null());
    // The committed transaction's block lists it, by height or block hash.
    let at = r0["height"].clone();
    let hashes = call(&node, "chain_getBlockTxHashes", json!([at]));
    assert_eq!(hashes["height"], at);
    assert!(
        hashes["txHashes"].as_array().unwrap().contains(&hash),
        "{hashes}"
    );
    let block = call(&node, "chain_getBlock", json!([at]));
    assert_eq!(hashes["hash"], block["hash"]);
    assert_eq!(
        hashes["txHashes"].as_array().unwrap().len(),
        block["block"]["txs"].as_array().unwrap().len()
    );
    assert_eq!(
        call(&node, "chain_getBlockTxHashes", json!([block["hash"]])),
        hashes
    );
    assert!(call(&node, "chain_getBlockTxHashes", json!([1_000_000])).is_null());

    let acct = call(&node, "state_getAccount", json!([to]));
    assert_eq!(acct["balance"], "300");
    assert_eq!(acct["exists"], true);
    let missing = call(&node, "state_getAccount", json!([Address([8; 32])]));
    assert_eq!(missing["exists"], false);

    // A proof a client can check against the state root.
    let key = palisade_runtime::state::keys::account(&to);
    let st = call(
        &node,
        "state_get",
        json!([format!("0x{}", hex::encode(&key)), {"prove": true}]),
    );
    let value = palisade_types::parse_hex(st["value"].as_str().unwrap()).unwrap();
    let root: Hash = st["stateRoot"].as_str().unwrap().parse().unwrap();
    let proof: palisade_runtime::smt::Proof = serde_json::from_value(st["proof"].clone()).unwrap();
    assert!(palisade_runtime::smt::verify(
        &root,
        &key,
        Some(&value),
        &proof
    ));
    assert!(!palisade_runtime::smt::verify(
        &root,
        &key,
        Some(b"forged"),
        &proof
    ));

    let set = call(&node, "validator_getSet", json!([]));
    assert_eq!(set["validators"].as_array().unwrap().len(), 1);
    let set1 = call(&node, "validator_getSet", json!([1]));
    assert_eq!(set1["hash"], set["hash"]);
    let pool = call(&node, "mempool_status", json!([]));
    assert!(pool["maxTxs"].as_u64().unwrap() > 0);
}

#[test]
fn bad_requests_get_stable_errors_and_the_node_keeps_going() {
    let node = DevNode::start();
    assert_eq!(call_err(&node, "no_such_method", json!([]))["code"], -32601);
    assert_eq!(call_err(&node, "tx_get", json!(["0x12"]))["code"], -32602);
    assert_eq!(
        call_err(&node, "chain_getBlock", json!([{"x": 1}]))["code"],
        -32602
    );
    assert_eq!(
        call_err(&node, "tx_submit", json!(["0x00"]))["code"],
        -32040
    );
    assert_eq!(
        call_err(&node, "tx_submit", json!(["nothex"]))["code"],
        -32602
    );

    // A forged signature.
    let key = dev_account(1);
    let mut tx = Transaction {
        chain_id: node.chain_id(),
        nonce: 0,
        signer: key.address(),
        action: Action::Transfer {
            to: Address([9; 32]),
            amount: 1,
        },
    }
    .sign(&key);
    tx.signature = Signature([3; 64]);
    let e = call_err(
        &node,
        "tx_submit",
        json!([format!("0x{}", hex::encode(encode(&tx)))]),
    );
    assert_eq!(e["code"], -32002);
    assert_eq!(e["data"], "bad_signature");

    // Another chain's transaction.
    let other = Transaction {
        chain_id: palisade_types::ChainId::new("other-chain").unwrap(),
        nonce: 0,
        signer: key.address(),
        action: Action::Transfer {
            to: Address([9; 32]),
            amount: 1,
        },
    }
    .sign(&key);
    let e = call_err(
        &node,
        "tx_submit",
        json!([format!("0x{}", hex::encode(encode(&other)))]),
    );
    assert_eq!(e["data"], "wrong_chain_id");

    // An account with no role.
    let stranger = palisade_types::Keypair::from_seed([77; 32]);
    let t = Transaction {
        chain_id: node.chain_id(),
        nonce: 0,
        signer: stranger.address(),
        action: Action::Transfer {
            to: Address([9; 32]),
            amount: 1,
        },
    }
    .sign(&stranger);
    let e = call_err(
        &node,
        "tx_submit",
        json!([format!("0x{}", hex::encode(encode(&t)))]),
    );
    assert_eq!(e["data"], "unknown_signer");

    // The same transaction twice.
    let good = transfer(&node, 2, 0, Address([9; 32]), 1);
    call(&node, "tx_submit", json!([good]));
    let e = call_err(&node, "tx_submit", json!([good]));
    assert!(e["code"] == -32003 || e["code"] == -32002, "{e}");

    assert_eq!(
        call_err(&node, "tx_submitAndWait", json!([good, 0]))["code"],
        -32602
    );
    assert_eq!(
        call_err(&node, "state_get", json!(["0x01", {"height": 1_000_000}]))["code"],
        -32042
    );

    // Garbage, an oversized body and an oversized batch.
    let raw = |body: &[u8]| palisade_tests::raw_post(&node.rpc, body);
    assert!(raw(b"{{{{ not json").contains("-32700"));
    let big = vec![b'x'; 2 * 1024 * 1024];
    let resp = raw(&big);
    assert!(
        resp.starts_with("HTTP/1.1 413") || resp.contains("-32007") || resp.is_empty(),
        "{resp}"
    );
    let batch: Vec<Value> = (0..200)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "chain_getHeight"}))
        .collect();
    let resp = raw(serde_json::to_string(&batch).unwrap().as_bytes());
    assert!(
        resp.contains("-32010"),
        "oversized batch accepted: {}",
        &resp[..resp.len().min(300)]
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let resp = raw(deep.as_bytes());
    assert!(resp.contains("error"), "{}", &resp[..resp.len().min(300)]);

    // GET /health and the chain still advancing after all that.
    let health = palisade_tests::http_get(&node.rpc, "/health").expect("health");
    assert!(health.contains("\"ok\":true"), "{health}");
    let h1 = call(&node, "chain_getHeight", json!([])).as_u64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while call(&node, "chain_getHeight", json!([])).as_u64().unwrap() <= h1 {
        assert!(
            std::time::Instant::now() < deadline,
            "chain stalled at {h1}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn submit_batch_answers_each_transaction_in_order() {
    let node = DevNode::start();
    let to = Address([5; 32]);
    let good: Vec<String> = (0..20).map(|n| transfer(&node, 3, n, to, 1)).collect();
    let key = dev_account(4);
    let mut forged = Transaction {
        chain_id: node.chain_id(),
        nonce: 0,
        signer: key.address(),
        action: Action::Transfer { to, amount: 1 },
    }
    .sign(&key);
    forged.signature = Signature([3; 64]);
    let forged = format!("0x{}", hex::encode(encode(&forged)));
    // Good ones, a forged signature, bytes that do not decode and a
    // duplicate, mixed: each gets its own outcome, in order, and the
    // forged one does not stop the rest.
    let mut batch = good[..10].to_vec();
    batch.push(forged);
    batch.push("0x00".into());
    batch.push(good[3].clone());
    batch.extend_from_slice(&good[10..]);
    let out = call(&node, "tx_submitBatch", json!([batch]));
    let out = out.as_array().unwrap();
    assert_eq!(out.len(), batch.len());
    for (i, o) in out.iter().enumerate() {
        match i {
            10 => {
                assert_eq!(o["error"]["code"], -32002, "{o}");
                assert_eq!(o["error"]["data"], "bad_signature", "{o}");
            }
            11 => assert_eq!(o["error"]["code"], -32040, "{o}"),
            12 => assert_eq!(o["error"]["code"], -32003, "{o}"),
            _ => assert!(
                o["hash"].is_string() && o.get("error").is_none(),
                "{i}: {o}"
            ),
        }
    }
    // The hashes are the transactions' ids: all 20 commit.
    let last = out.last().unwrap()["hash"].clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while call(&node, "tx_getReceipt", json!([last])).is_null() {
        assert!(
            std::time::Instant::now() < deadline,
            "batch never committed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let acct = call(
        &node,
        "state_getAccount",
        json!([dev_account(3).address().to_string()]),
    );
    assert_eq!(acct["nonce"], 20, "{acct}");
    // Empty and oversized calls are refused as a whole.
    assert_eq!(
        call_err(&node, "tx_submitBatch", json!([[]]))["code"],
        -32602
    );
    let too_many: Vec<&str> = vec!["0x00"; 1_001];
    assert_eq!(
        call_err(&node, "tx_submitBatch", json!([too_many]))["code"],
        -32602
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_over_websocket() {
    // New heads without sending anything: a chain that makes empty blocks.
    let node = tokio::task::spawn_blocking(|| DevNode::start_with_empty_blocks(100))
        .await
        .unwrap();
    let ws = WsClientBuilder::default()
        .build(format!("ws://{}", node.rpc))
        .await
        .unwrap();
    let mut heads: Subscription<HeadResponse> = ws
        .subscribe(
            "chain_subscribeNewHeads",
            rpc_params![],
            "chain_unsubscribeNewHeads",
        )
        .await
        .unwrap();
    let a = tokio::time::timeout(Duration::from_secs(10), heads.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let b = tokio::time::timeout(Duration::from_secs(10), heads.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(b.header.height.get(), a.header.height.get() + 1);
    assert_eq!(b.header.last_block_hash, a.hash);

    let tx = transfer(&node, 3, 0, Address([9; 32]), 5);
    let key = dev_account(3);
    let hash = palisade_types::decode::<palisade_types::SignedTransaction>(
        &palisade_types::parse_hex(&tx).unwrap(),
    )
    .unwrap()
    .hash();
    assert_eq!(hash.to_string().len(), 66);
    let mut status: Subscription<TxStatus> = ws
        .subscribe(
            "tx_subscribeStatus",
            rpc_params![hash],
            "tx_unsubscribeStatus",
        )
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), status.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first, TxStatus::Unknown);
    let rpc = node.rpc.clone();
    tokio::task::spawn_blocking(move || rpc_call(&rpc, "tx_submit", json!([tx])).unwrap())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let s = tokio::time::timeout_at(deadline, status.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let TxStatus::Committed { receipt } = s {
            assert!(receipt.success);
            assert_eq!(receipt.tx_hash, hash);
            break;
        }
    }
    let _ = key;
}

#[test]
fn spec_client_in_python_submits_a_transfer() {
    let python = std::process::Command::new("python3")
        .args(["-c", "import cryptography"])
        .output();
    if !python.is_ok_and(|o| o.status.success()) {
        panic!("python3 with the `cryptography` package is needed (.ci/run installs it)");
    }
    let node = DevNode::start();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("spec_client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&node.rpc)
        .arg(format!("0x{}", hex::encode(dev_account(1).seed())))
        .arg(Address([0x42; 32]).to_string())
        .arg("777")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "spec client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));
}

/// A raw HTTP exchange with extra header lines: (status, head, body).
pub(crate) fn exchange(addr: &str, request: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Up to the end, or (a WebSocket handshake stays open) the head.
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&out);
        if text.starts_with("HTTP/1.1 101") && text.contains("\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// A batch's consecutive `eth_sendRawTransaction` calls are admitted
/// together (the node's intake), yet each keeps its own answer, in order,
/// and a read after them in the same batch sees them.
#[test]
fn a_batch_of_ethereum_sends_is_answered_call_by_call_in_order() {
    use palisade_ethtx::{Eip1559, EthSigner};
    let node = DevNode::start();
    let (address, secret) = palisade_node::dev_eth::DEV_EVM_ACCOUNTS[2];
    let secret: [u8; 32] = hex::decode(&secret[2..]).unwrap().try_into().unwrap();
    let signer = EthSigner::from_secret(secret).unwrap();
    let chain_id = u64::from_str_radix(
        call(&node, "eth_chainId", json!([]))
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let send = |nonce: u64| {
        format!(
            "0x{}",
            hex::encode(signer.sign_eip1559(&Eip1559::transfer(
                chain_id,
                nonce,
                palisade_ethtx::Address::repeat_byte(7),
                1,
            )))
        )
    };
    let raws: Vec<String> = (0..12).map(send).collect();
    // Sends, then a duplicate, bytes that do not decode, a send of
    // another chain's transaction, more sends, and a read: one batch.
    let other_chain = format!(
        "0x{}",
        hex::encode(signer.sign_eip1559(&Eip1559 {
            chain_id: chain_id + 1,
            nonce: 12,
            gas_limit: 21_000,
            max_fee_per_gas: 0,
            max_priority_fee_per_gas: 0,
            to: None,
            value: 0,
            input: Vec::new(),
        }))
    );
    let mut params: Vec<Value> = raws[..6].iter().map(|r| json!([r])).collect();
    params.push(json!([raws[1]]));
    params.push(json!(["0x02c0"]));
    params.push(json!([other_chain]));
    params.extend(raws[6..].iter().map(|r| json!([r])));
    let mut body: Vec<Value> = params
        .iter()
        .enumerate()
        .map(|(id, p)| json!({"jsonrpc": "2.0", "id": id, "method": "eth_sendRawTransaction", "params": p}))
        .collect();
    body.push(json!({"jsonrpc": "2.0", "id": "count", "method": "eth_getTransactionCount", "params": [address, "pending"]}));
    let (status, _, answer) = post_with(&node.rpc, &Value::Array(body).to_string(), "");
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let answer = answer.as_array().unwrap();
    assert_eq!(answer.len(), params.len() + 1, "{answer:?}");
    let mut sent = 0;
    for (i, a) in answer[..params.len()].iter().enumerate() {
        assert_eq!(a["id"], json!(i), "answers keep the batch's order: {a}");
        match i {
            6 => assert_eq!(a["error"]["code"], -32003, "the duplicate: {a}"),
            7 | 8 => {
                assert_eq!(a["error"]["code"], -32002, "{i}: {a}");
                assert_eq!(a["error"]["data"], "eth_tx_malformed", "{i}: {a}");
            }
            _ => {
                let raw = &raws[sent];
                let hash = palisade_types::keccak256(&hex::decode(&raw[2..]).unwrap());
                assert_eq!(
                    a["result"],
                    json!(format!("0x{}", hex::encode(hash))),
                    "{i}: {a}"
                );
                sent += 1;
            }
        }
    }
    assert_eq!(sent, raws.len());
    assert_eq!(answer[params.len()]["id"], "count");
    assert_eq!(answer[params.len()]["result"], "0xc", "{answer:?}");
    // All of them commit.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while call(&node, "eth_getTransactionCount", json!([address, "latest"])) != "0xc" {
        assert!(
            std::time::Instant::now() < deadline,
            "the sends never committed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn post_with(addr: &str, body: &str, headers: &str) -> (u16, String, String) {
    exchange(
        addr,
        &format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// `(id, error code)` of each answer, sorted; `result` answers as code 0.
fn codes(body: &str) -> Vec<(Value, i64)> {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    let one = |r: &Value| (r["id"].clone(), r["error"]["code"].as_i64().unwrap_or(0));
    let mut out: Vec<(Value, i64)> = match &v {
        Value::Array(a) => a.iter().map(one).collect(),
        r => vec![one(r)],
    };
    out.sort_by_key(|(id, c)| format!("{id}{c}"));
    out
}

/// The JSON-RPC 2.0 specification's section 7 error examples against a
/// real node (its methods for the example's `sum`, `subtract`, ...).
#[test]
fn specification_section_7_errors() {
    let node = DevNode::start();
    let a = node.rpc.as_str();
    let answer = |body: &str| {
        let (status, head, body) = post_with(a, body, "");
        assert!(matches!(status, 200 | 204 | 400), "{head}");
        assert_eq!(status == 204, body.is_empty(), "{head}");
        body
    };
    let null = Value::Null;
    // non-existent method
    assert_eq!(
        codes(&answer(
            r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#
        )),
        vec![(json!("1"), -32601)]
    );
    // invalid JSON
    assert_eq!(
        codes(&answer(
            r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#
        )),
        vec![(null.clone(), -32700)]
    );
    // invalid Request object
    assert_eq!(
        codes(&answer(
            r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#
        )),
        vec![(null.clone(), -32600)]
    );
    // Batch, invalid JSON
    assert_eq!(
        codes(&answer(
            r#"[{"jsonrpc": "2.0", "method": "chain_getHeight", "params": [], "id": "1"},{"jsonrpc": "2.0", "method"]"#
        )),
        vec![(null.clone(), -32700)]
    );
    // empty Array
    assert_eq!(codes(&answer("[]")), vec![(null.clone(), -32600)]);
    // invalid Batch (but not empty)
    assert_eq!(codes(&answer("[1]")), vec![(null.clone(), -32600)]);
    // invalid Batch
    assert_eq!(codes(&answer("[1,2,3]")), vec![(null.clone(), -32600); 3]);
    // Batch: calls, a notification, an invalid object, an unknown method
    assert_eq!(
        codes(&answer(
            r#"[
            {"jsonrpc": "2.0", "method": "chain_getHeight", "params": [], "id": "1"},
            {"jsonrpc": "2.0", "method": "chain_getHeight", "params": []},
            {"jsonrpc": "2.0", "method": "mempool_status", "id": "2"},
            {"foo": "boo"},
            {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
            {"jsonrpc": "2.0", "method": "rpc_methods", "id": "9"}
        ]"#
        )),
        vec![
            (json!("1"), 0),
            (json!("2"), 0),
            (json!("5"), -32601),
            (json!("9"), 0),
            (null.clone(), -32600),
        ]
    );
    // Notifications, alone or in a batch: nothing.
    assert_eq!(
        answer(r#"{"jsonrpc": "2.0", "method": "chain_getHeight", "params": [1,2,3,4,5]}"#),
        ""
    );
    assert_eq!(
        answer(
            r#"[{"jsonrpc": "2.0", "method": "chain_getHeight"},{"jsonrpc": "2.0", "method": "mempool_status"}]"#
        ),
        ""
    );
    // Not from the examples: a request that is not an object, and params
    // that are neither array nor object.
    assert_eq!(codes(&answer("1")), vec![(null.clone(), -32600)]);
    assert_eq!(
        codes(&answer(
            r#"{"jsonrpc": "2.0", "method": "chain_getHeight", "params": "bar", "id": 1}"#
        )),
        vec![(json!(1), -32600)]
    );
}

#[test]
fn browser_pages_need_an_allowed_origin() {
    let node = DevNode::start();
    let a = node.rpc.as_str();
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"chain_getHeight"}"#;
    // Not a browser: served.
    assert_eq!(post_with(a, call, "").0, 200);
    // Any other site's page is refused, over HTTP and WebSocket.
    let (status, _, body) = post_with(a, call, "Origin: https://evil.example\r\n");
    assert_eq!(status, 403, "{body}");
    let upgrade = |origin: &str| {
        exchange(
            a,
            &format!(
                "GET / HTTP/1.1\r\nHost: {a}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
            ),
        )
        .0
    };
    assert_eq!(upgrade("https://evil.example"), 403);
    // `palisade dev` allows pages on this machine.
    assert_eq!(upgrade("http://127.0.0.1:3000"), 101);
    let (status, head, _) = post_with(a, call, "Origin: http://localhost:5173\r\n");
    assert_eq!(status, 200, "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("access-control-allow-origin: http://localhost:5173"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tx_status_subscription_ends_after_its_timeout() {
    let node = tokio::task::spawn_blocking(DevNode::start).await.unwrap();
    let ws = WsClientBuilder::default()
        .build(format!("ws://{}", node.rpc))
        .await
        .unwrap();
    let mut status: Subscription<TxStatus> = ws
        .subscribe(
            "tx_subscribeStatus",
            rpc_params![Hash([7; 32]), 500],
            "tx_unsubscribeStatus",
        )
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), status.next()).await;
    assert_eq!(first.unwrap().unwrap().unwrap(), TxStatus::Unknown);
    let last = tokio::time::timeout(Duration::from_secs(10), status.next()).await;
    assert_eq!(
        last.unwrap().unwrap().unwrap(),
        TxStatus::TimedOut { after_ms: 500 }
    );
}

#[test]
fn health_is_true_while_committing_and_a_dead_task_stops_the_node() {
    // Ten seconds leave a busy machine time to start the node and ask it.
    let mut node = DevNode::start_test_node(&["--fail-task", "sync:10000"]);
    // Alone but committing: healthy, with its block age.
    let health = call(&node, "system_health", json!([]));
    assert_eq!(health["ok"], true, "{health}");
    assert!(
        health["lastBlockAgeMs"].as_u64().unwrap() < 5_000,
        "{health}"
    );
    assert_eq!(health["reasons"], json!([]));
    assert!(palisade_tests::http_get(&node.rpc, "/health").is_some());
    // Its sync task panics at 10 s: the node stops, non-zero, saying why.
    let status = node
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("still running without its sync task:\n{}", node.log()));
    assert!(!status.success(), "{status}");
    let log = node.log();
    assert!(
        log.contains("sync stopped: panicked: TEST ONLY: --fail-task sync"),
        "{log}"
    );
}
