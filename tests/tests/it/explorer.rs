//! The explorer: the methods it reads (`account_getTransactions`,
//! `state_getEvmAccount`, `validator_getActivity`) against real nodes, its
//! pages as the node serves them, and (`explorer_in_a_real_browser`) the
//! page itself in Chromium against a 4-validator devnet under load.

use palisade_node::cli::devnet::dev_account;
use palisade_rpc::explorer::CSP;
use palisade_tests::{rpc_call, DevNode};
use palisade_types::{encode, Action, Address, Transaction};
use serde_json::{json, Value};

fn call(rpc: &str, method: &str, params: Value) -> Value {
    rpc_call(rpc, method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
}

fn call_err(rpc: &str, method: &str, params: Value) -> Value {
    match rpc_call(rpc, method, params) {
        Ok(v) => panic!("{method} succeeded: {v}"),
        Err(e) => e,
    }
}

fn signed(node: &DevNode, from: u16, nonce: u64, action: Action) -> String {
    let key = dev_account(from);
    let tx = Transaction {
        chain_id: node.chain_id(),
        nonce,
        signer: key.address(),
        action,
    }
    .sign(&key);
    format!("0x{}", hex::encode(encode(&tx)))
}

#[test]
fn account_transactions_come_from_the_index_newest_first_in_pages() {
    let node = DevNode::start();
    let rpc = node.rpc.as_str();
    let to = Address([0x5a; 32]);
    let mut sent = Vec::new();
    for nonce in 0..3 {
        let tx = signed(&node, 1, nonce, Action::Transfer { to, amount: 7 });
        let r = call(rpc, "tx_submitAndWait", json!([tx, 20_000]));
        assert_eq!(r["success"], true, "{r}");
        sent.push(r["txHash"].clone());
    }
    let sender = dev_account(1).address();
    let evm = call(rpc, "state_getAccount", json!([sender]))["evmAddress"].clone();
    // The sender's list under either of its addresses; the recipient's too.
    for who in [json!(sender), evm.clone(), json!(to)] {
        let page = call(rpc, "account_getTransactions", json!([who]));
        let hashes: Vec<&Value> = page["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["hash"])
            .collect();
        assert_eq!(
            hashes,
            sent.iter().rev().collect::<Vec<_>>(),
            "{who}: {page}"
        );
        assert!(page["next"].is_null());
        assert_eq!(page["indexedFrom"], 1);
        assert_eq!(page["transactions"][0]["kind"], "native");
    }
    assert_eq!(
        call(rpc, "account_getTransactions", json!([sender]))["account"],
        evm
    );
    // Pages of one, each naming where the next starts.
    let mut before = Value::Null;
    let mut walked = Vec::new();
    for _ in 0..5 {
        let q = if before.is_null() {
            json!({"limit": 1})
        } else {
            json!({"limit": 1, "before": before})
        };
        let page = call(rpc, "account_getTransactions", json!([to, q]));
        walked.extend(
            page["transactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["hash"].clone()),
        );
        before = page["next"].clone();
        if before.is_null() {
            break;
        }
    }
    assert_eq!(walked, sent.iter().rev().cloned().collect::<Vec<_>>());
    let nobody = call(rpc, "account_getTransactions", json!([Address([1; 32])]));
    assert_eq!(nobody["transactions"], json!([]));
    for (params, why) in [
        (json!(["0x1234"]), "neither address length"),
        (json!(["zz"]), "not hex"),
        (json!([to, {"limit": 0}]), "limit 0"),
        (json!([to, {"limit": 101}]), "limit over 100"),
        (json!([to, {"limitt": 1}]), "unknown field"),
    ] {
        let e = call_err(rpc, "account_getTransactions", params);
        assert_eq!(e["code"], -32602, "{why}: {e}");
    }
}

#[test]
fn a_node_without_the_account_index_says_so() {
    let mut net = palisade_tests::Devnet::generate(1);
    net.start_with(0, &["--set", "ledger.account_index=false"]);
    net.wait_height(&[0], 2, std::time::Duration::from_secs(30));
    let e = call_err(
        &net.rpc_addr(0),
        "account_getTransactions",
        json!([Address([1; 32])]),
    );
    assert_eq!(e["code"], -32044, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("ledger.account_index"),
        "{e}"
    );
}

#[test]
fn evm_accounts_and_validator_activity() {
    let node = DevNode::start();
    let rpc = node.rpc.as_str();
    // A native account's EVM face names it and shares its balance and roles.
    let native = dev_account(0).address();
    let acct = call(rpc, "state_getAccount", json!([native]));
    let face = call(rpc, "state_getEvmAccount", json!([acct["evmAddress"]]));
    assert_eq!(face["native"], json!(native));
    assert_eq!(face["balance"], acct["balance"]);
    assert_eq!(face["roles"], acct["roles"]);
    assert_eq!(face["codeSize"], 0);
    // A development Ethereum account: its own balance and roles, no native.
    let eth = palisade_node::dev_eth::DEV_EVM_ACCOUNTS[0].0;
    let e = call(rpc, "state_getEvmAccount", json!([eth]));
    assert!(e["native"].is_null(), "{e}");
    assert_ne!(e["balance"], "0");
    assert_eq!(e["roles"], json!(["member", "deployer"]));
    let unknown = call(
        rpc,
        "state_getEvmAccount",
        json!(["0x00000000000000000000000000000000000000aa"]),
    );
    assert_eq!(unknown["balance"], "0");
    assert_eq!(unknown["roles"], json!([]));
    assert_eq!(
        call_err(rpc, "state_getEvmAccount", json!(["0x12"]))["code"],
        -32602
    );

    let status = call(rpc, "system_status", json!([]));
    let me = status["validator"].clone();
    let a = call(rpc, "validator_getActivity", json!([10]));
    let v = &a["validators"][0];
    assert_eq!(v["publicKey"], me);
    let heights = a["heights"].as_array().unwrap();
    assert!(!heights.is_empty() && heights.len() <= 10, "{a}");
    assert_eq!(heights[0]["height"], a["to"]);
    assert_eq!(v["proposed"].as_u64().unwrap(), heights.len() as u64);
    assert_eq!(v["signed"].as_u64().unwrap(), heights.len() as u64);
    assert_eq!(v["missed"], 0);
    assert_eq!(heights[0]["signers"], json!([me]));
    for bad in [json!([0]), json!([1001])] {
        assert_eq!(call_err(rpc, "validator_getActivity", bad)["code"], -32602);
    }
}

/// One HTTP/1.1 request; (status, headers lower-cased, body).
fn http(addr: &str, request: &str) -> (u16, String, String) {
    let (status, head, body) = crate::rpc::exchange(addr, request);
    (status, head.to_lowercase(), body)
}

#[test]
fn explorer_pages_are_served_with_a_strict_policy_and_may_call_their_node() {
    // A testnet node: the explorer is on and no other origin is allowed, so
    // the page's own-origin calls pass only by the explorer's rule.
    let mut net = palisade_tests::Devnet::generate(1);
    net.start(0);
    net.wait_height(&[0], 1, std::time::Duration::from_secs(30));
    let addr = net.rpc_addr(0);
    let addr = addr.as_str();
    let get = |path: &str| {
        http(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        )
    };
    let (status, head, body) = get("/explorer/");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains(&format!("content-security-policy: {}", CSP.to_lowercase())));
    assert!(head.contains("x-content-type-options: nosniff"));
    assert!(body.contains("<html"), "{body}");
    // Every script and stylesheet the page names is served, with the policy.
    let assets: Vec<&str> = body
        .split(['"', '\''])
        .filter(|s| s.starts_with("./assets/") || s.starts_with("/explorer/assets/"))
        .collect();
    assert!(!assets.is_empty(), "no assets in {body}");
    for a in assets {
        let path = format!(
            "/explorer/{}",
            a.trim_start_matches("./").trim_start_matches("/explorer/")
        );
        let (status, head, _) = get(&path);
        assert_eq!(status, 200, "{path}");
        assert!(head.contains("content-security-policy"), "{path}");
        assert!(head.contains("immutable"), "{path}");
    }
    assert_eq!(get("/explorer").0, 308);
    assert_eq!(get("/explorer/no-such-file.js").0, 404);
    assert_eq!(get("/explorer/../Cargo.toml").0, 404);

    let post = |origin: &str, host: &str| {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"chain_getHeight","params":[]}"#;
        http(
            addr,
            &format!(
                "POST / HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
        .0
    };
    // The page the node served may call it at the address it was opened at.
    assert_eq!(post(&format!("http://{addr}"), addr), 200);
    // A site whose name points here (DNS rebinding) may not.
    let port = addr.rsplit_once(':').unwrap().1;
    let evil = format!("evil.example:{port}");
    assert_eq!(post(&format!("http://{evil}"), &evil), 403);
}

fn explorer_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("explorer")
}

/// Where the browser test leaves its screenshots: `PALISADE_TEST_ARTIFACTS`
/// or the target directory's `test-artifacts/`.
fn artifacts_dir() -> std::path::PathBuf {
    let base = std::env::var_os("PALISADE_TEST_ARTIFACTS")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(|t| std::path::PathBuf::from(t).join("test-artifacts"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("palisade-test-artifacts"));
    base.join("explorer")
}

/// Init code that reverts with `Error(message)` (message under 32 bytes).
fn reverting_init_code(message: &str) -> Vec<u8> {
    assert!(message.len() < 32);
    // CODECOPY the 100 bytes after this 12-byte prefix, then REVERT them.
    let mut code = vec![
        0x60, 0x64, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, 0x64, 0x60, 0x00, 0xfd,
    ];
    code.extend([0x08, 0xc3, 0x79, 0xa0]);
    let mut word = [0u8; 32];
    word[31] = 0x20;
    code.extend(word);
    let mut len = [0u8; 32];
    len[31] = message.len() as u8;
    code.extend(len);
    let mut text = [0u8; 32];
    text[..message.len()].copy_from_slice(message.as_bytes());
    code.extend(text);
    code
}

/// A transaction that execution refused: `admin` revokes a fresh member's
/// role and, right after it in one `tx_submitBatch`, the member writes a
/// value. Both are admitted against the state before the revocation, so
/// when they share a block the write comes after it and is refused. They
/// may fall into different blocks (then the pool drops the write), so it
/// is tried again with another account. The write's hash and height, and
/// the revocation's hash.
fn a_refused_transaction(
    rpc: &str,
    sign: &dyn Fn(&palisade_types::Keypair, u64, Action) -> String,
    admin: &palisade_types::Keypair,
    admin_nonce: &mut u64,
) -> (String, u64, String) {
    use palisade_types::{BoundedBytes, Keypair, Role};
    let mut next_admin = || {
        *admin_nonce += 1;
        *admin_nonce - 1
    };
    for attempt in 0..8u8 {
        let member = Keypair::from_seed([0x60 + attempt; 32]);
        let role = |revoke: bool| {
            let (account, role) = (member.address(), Role::Member);
            if revoke {
                Action::RevokeRole { account, role }
            } else {
                Action::GrantRole { account, role }
            }
        };
        let granted = call(
            rpc,
            "tx_submitAndWait",
            json!([sign(admin, next_admin(), role(false)), 20_000]),
        );
        assert_eq!(granted["success"], true, "{granted}");
        let write = Action::Put {
            // A namespace belongs to its first writer: one per account.
            namespace: BoundedBytes::new(format!("refused-{attempt}").into_bytes()).unwrap(),
            key: BoundedBytes::new(b"refused".to_vec()).unwrap(),
            value: BoundedBytes::new(vec![attempt]).unwrap(),
        };
        let sent = call(
            rpc,
            "tx_submitBatch",
            json!([[
                sign(admin, next_admin(), role(true)),
                sign(&member, 0, write)
            ]]),
        );
        let hash = |i: usize| {
            sent[i]["hash"]
                .as_str()
                .unwrap_or_else(|| panic!("{sent}"))
                .to_string()
        };
        let (revoke, write) = (hash(0), hash(1));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let height = loop {
            if let Some(h) = call(rpc, "tx_get", json!([revoke]))["height"].as_u64() {
                break h;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "revocation not committed"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let block = call(rpc, "chain_getBlockTxHashes", json!([height]));
        let at = block["txHashes"]
            .as_array()
            .and_then(|all| all.iter().position(|h| h.as_str() == Some(write.as_str())));
        // The browser checks that only the write is marked: a block with
        // another refusal (an earlier attempt's write) is tried again.
        let refused = block["refused"].as_array().cloned().unwrap_or_default();
        if at.is_some_and(|at| refused == [json!(at)]) {
            return (write, height, revoke);
        }
    }
    panic!("no block had the revocation and the refused write together in 8 tries");
}

#[test]
fn explorer_in_a_real_browser() {
    use palisade_tests::{clients_ready, run_summary, runs, Devnet, Load};
    use palisade_types::{Keypair, Role};
    use std::time::Duration;

    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let dir = explorer_dir();
    if !clients_ready(
        runs("node", &["--version"])
            && std::path::Path::new(&chromium).exists()
            && dir
                .join("node_modules/playwright-core/package.json")
                .exists(),
        "node, Chromium and tests/explorer/node_modules (playwright-core)",
    ) {
        return;
    }
    let mut net = Devnet::generate(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(30));
    let rpc0 = net.rpc_addr(0);
    let chain = net.chain_id();
    let admin = net.admin_key();
    let user = Keypair::from_seed([0x4b; 32]);
    let loader = Keypair::from_seed([0x4c; 32]);
    let sign = |key: &Keypair, nonce: u64, action: Action| {
        let tx = Transaction {
            chain_id: chain.clone(),
            nonce,
            signer: key.address(),
            action,
        }
        .sign(key);
        format!("0x{}", hex::encode(encode(&tx)))
    };
    let wait = |tx: String| call(&rpc0, "tx_submitAndWait", json!([tx, 20_000]));
    let setup = [
        Action::Transfer {
            to: user.address(),
            amount: 1_000_000,
        },
        Action::Transfer {
            to: loader.address(),
            amount: 1_000_000,
        },
        Action::GrantRole {
            account: user.address(),
            role: Role::Member,
        },
        Action::GrantRole {
            account: user.address(),
            role: Role::Deployer,
        },
        Action::GrantRole {
            account: loader.address(),
            role: Role::Member,
        },
    ];
    let mut admin_nonce = setup.len() as u64;
    for (nonce, action) in setup.into_iter().enumerate() {
        let r = wait(sign(&admin, nonce as u64, action));
        assert_eq!(r["success"], true, "setup: {r}");
    }
    // Under load from here on: the page must keep up with new blocks.
    let load = Load::start(net.rpc_addrs(), chain.clone(), loader, 20);

    let ok = wait(sign(
        &user,
        0,
        Action::Transfer {
            to: Address([0x33; 32]),
            amount: 5,
        },
    ));
    assert_eq!(ok["success"], true, "{ok}");
    let xss_key = "<img src=x onerror=window.__xss=1>";
    let xss_value = "<script>window.__xss=2</script>";
    let xss = wait(sign(
        &user,
        1,
        Action::Put {
            namespace: palisade_types::BoundedBytes::new(b"explorer".to_vec()).unwrap(),
            key: palisade_types::BoundedBytes::new(xss_key.as_bytes().to_vec()).unwrap(),
            value: palisade_types::BoundedBytes::new(xss_value.as_bytes().to_vec()).unwrap(),
        },
    ));
    assert_eq!(xss["success"], true, "{xss}");
    let reason = "explorer-test-reason";
    let failed = wait(sign(
        &user,
        2,
        Action::EvmCreate {
            value: 0,
            code: palisade_types::BoundedBytes::new(reverting_init_code(reason)).unwrap(),
            gas_limit: 200_000,
        },
    ));
    assert_eq!(failed["success"], false, "{failed}");
    assert!(
        failed["error"].as_str().unwrap_or("").contains(reason),
        "{failed}"
    );

    let (refused_tx, refused_height, revoke_tx) =
        a_refused_transaction(&rpc0, &sign, &admin, &mut admin_nonce);

    // A validator goes down; the others carry on without its precommits.
    let stopped = call(&net.rpc_addr(3), "system_status", json!([]))["validator"].clone();
    let before = net.top_height(&[0]);
    net.stop(3);
    net.wait_height(&[0, 1, 2], before + 12, Duration::from_secs(60));

    let artifacts = artifacts_dir();
    let input = json!({
        "url": format!("http://{rpc0}/explorer/"),
        "okTx": ok["txHash"],
        "failedTx": failed["txHash"],
        "failedReason": reason,
        "address": user.address().to_string(),
        "xssTx": xss["txHash"],
        "xssText": xss_key,
        "stoppedValidator": stopped,
        "refusedTx": refused_tx,
        "refusedHeight": refused_height,
        "revokeTx": revoke_tx,
        "artifacts": artifacts,
        "chromium": chromium,
    });
    let summary = run_summary(
        std::process::Command::new("node")
            .arg("explorer.mjs")
            .current_dir(&dir)
            .env("EXPLORER_TEST", input.to_string()),
        "the explorer's browser test failed: ",
    );
    load.stop();
    assert_eq!(summary["ok"], true, "{summary}");
    let checks = summary["checks"].as_array().unwrap();
    for name in [
        "xss", "stopped", "receipt", "search", "reason", "live", "refused",
    ] {
        assert!(
            checks
                .iter()
                .any(|c| c["ok"] == true && c["name"].as_str().unwrap_or("").contains(name)),
            "no passing check about {name}: {summary}"
        );
    }
    eprintln!("explorer screenshots in {}", artifacts.display());
}
