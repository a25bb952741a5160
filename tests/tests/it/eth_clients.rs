//! Real Ethereum client libraries against a real node: ethers v6 (npm,
//! installed from `tests/eth/package-lock.json` by the test prerequisites)
//! reads a `palisade dev` chain through the Ethereum JSON-RPC methods.
//! The ERC-20 is the solc-compiled token of the runtime's tests, deployed
//! with `palisade tx evm-create`. `contracts.mjs` runs a dapp's whole
//! workflow (solc-js compiling, deploying, events through eth_getLogs and
//! eth_subscribe, revert reasons and custom errors) on `palisade dev` and
//! across the nodes of a 4-validator devnet.

use std::path::PathBuf;
use std::process::Command;

use palisade_tests::{clients_ready, palisade_bin, run_summary, runs, DevNode};

fn eth_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eth")
}

/// Node.js with the locked packages, or (outside CI) a reason to skip.
fn ethers_ready() -> bool {
    clients_ready(
        runs("node", &["--version"]) && eth_dir().join("node_modules/ethers/package.json").exists(),
        "node and tests/eth/node_modules",
    )
}

fn deploy_token(node: &DevNode, supply: u16) -> String {
    let token: serde_json::Value =
        serde_json::from_str(include_str!("../../../runtime/tests/fixtures/Token.json")).unwrap();
    let mut arg = [0u8; 32];
    arg[30..].copy_from_slice(&supply.to_be_bytes());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token.bin");
    std::fs::write(
        &file,
        format!(
            "{}{}",
            token["bytecode"].as_str().unwrap(),
            hex::encode(arg)
        ),
    )
    .unwrap();
    let out = Command::new(palisade_bin())
        .env("PALISADE_RPC", format!("http://{}", node.rpc))
        .args(["tx", "evm-create", "--wait", "--code"])
        .arg(format!("@{}", file.display()))
        .arg("--key-file")
        .arg(node.key_file(0))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.trim().strip_prefix("contract "))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string()
}

#[test]
fn ethers_reads_state_calls_contracts_and_decodes_reverts() {
    if !ethers_ready() {
        return;
    }
    let node = DevNode::start();
    let token = deploy_token(&node, 1000);
    let holder =
        palisade_runtime::evm::evm_address(&palisade_node::cli::devnet::dev_account(0).address());
    let spender =
        palisade_runtime::evm::evm_address(&palisade_node::cli::devnet::dev_account(1).address());
    let r = run_summary(
        Command::new("node")
            .current_dir(eth_dir())
            .arg("read.mjs")
            .arg(format!("http://{}", node.rpc))
            .arg(&token)
            .arg(holder.to_string())
            .arg(spender.to_string()),
        "read.mjs: ",
    );
    assert_eq!(r["chainId"], "1337", "{r}");
    assert!(r["blockNumber"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["blockHasBaseFee"], true, "{r}");
    assert!(r["blockTimestamp"].as_u64().unwrap() > 1_700_000_000, "{r}");
    assert_eq!(r["gasPrice"], "0", "{r}");
    // Base fee 0: ethers falls back to legacy pricing (no EIP-1559 fees).
    assert_eq!(r["maxPriorityFeePerGas"], "null", "{r}");
    // Account #0's one balance, seen through its EVM address.
    assert_eq!(r["holderBalance"], "1000000000000", "{r}");
    assert_eq!(r["holderNonce"], 1, "the creation used EVM nonce 0: {r}");
    assert!(r["codeLength"].as_u64().unwrap() > 100, "{r}");
    assert_eq!(r["name"], "Palisade Test Token", "{r}");
    assert_eq!(r["tokenBalance"], "1000", "{r}");
    let estimate: u64 = r["estimate"].as_str().unwrap().parse().unwrap();
    assert!((30_000..100_000).contains(&estimate), "{r}");
    assert_eq!(r["revert"], "allowance exceeded", "{r}");
    assert_eq!(
        r["customError"], "InsufficientBalance(0,1000000000000000000000000000000)",
        "{r}"
    );
}

#[test]
fn ethers_deploys_calls_and_pays_with_the_development_accounts() {
    if !ethers_ready() {
        return;
    }
    let node = DevNode::start();
    check_send(&node.rpc);
}

/// The same on four validators, sending through node 1: its Ethereum
/// transactions reach the other proposers by gossip, and every node ends
/// with the same contract.
#[test]
fn ethers_on_a_four_validator_devnet() {
    if !ethers_ready() {
        return;
    }
    let mut net = palisade_tests::Devnet::generate_with(4, &["--dev-evm-accounts"]);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 2, std::time::Duration::from_secs(60));
    let token = check_send(&net.rpc_addr(1));
    let h = net.common_height(&[0, 1, 2, 3]);
    let codes: Vec<serde_json::Value> = (0..4)
        .map(|i| {
            palisade_tests::rpc_call(
                &net.rpc_addr(i),
                "eth_getCode",
                serde_json::json!([token, format!("0x{h:x}")]),
            )
            .unwrap()
        })
        .collect();
    assert!(codes[0].as_str().unwrap().len() > 100, "{codes:?}");
    assert!(codes.iter().all(|c| *c == codes[0]), "{codes:?}");
    net.stop_all();
}

/// Runs `send.mjs` against `rpc` and checks what it saw; the token's
/// address.
fn check_send(rpc: &str) -> String {
    let keys = palisade_node::dev_eth::DEV_EVM_ACCOUNTS;
    let r = run_summary(
        Command::new("node")
            .current_dir(eth_dir())
            .arg("send.mjs")
            .arg(format!("http://{rpc}"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../runtime/tests/fixtures/Token.json"
            ))
            .arg(keys[0].1)
            .arg(keys[1].1),
        "send.mjs: ",
    );
    let token = r["tokenAddress"].as_str().unwrap().to_lowercase();
    // CREATE from account 0 at nonce 0.
    let expected = palisade_runtime::evm::create_address(&keys[0].0.parse().unwrap(), 0);
    assert_eq!(token, expected.to_string(), "{r}");
    assert_eq!(r["deployStatus"], 1, "{r}");
    assert_eq!(
        r["deployContract"].as_str().unwrap().to_lowercase(),
        token,
        "{r}"
    );
    assert_eq!(r["transferStatus"], 1, "{r}");
    assert_eq!(r["transferEvents"], serde_json::json!(["Transfer"]), "{r}");
    assert_eq!(r["balance1"], "25", "{r}");
    assert_eq!(
        r["fetchedFrom"].as_str().unwrap().to_lowercase(),
        keys[0].0,
        "{r}"
    );
    assert_eq!(
        r["fetchedTo"].as_str().unwrap().to_lowercase(),
        token,
        "{r}"
    );
    assert_eq!(r["fetchedNonce"], 1, "{r}");
    assert_eq!(r["typedType"], 2, "{r}");
    assert_eq!(r["received"], "10", "{r}");
    assert_eq!(r["nonce0"], 4, "{r}");
    assert_eq!(r["failedStatus"], 0, "{r}");
    assert!(r["outsider"].as_str().unwrap().contains("member"), "{r}");
    token
}

/// How long `contracts.mjs` may run (it bounds its own waits and whole
/// run tighter than this).
const CONTRACTS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Checks `contracts.mjs` must report, and report passed: a summary that
/// silently lost a part (a renamed or skipped check) fails here.
const CONTRACTS_REQUIRED_CHECKS: &[&str] = &[
    "compiled",
    "Token: address is CREATE(sender, nonce)",
    "Token: deploy gasUsed within the estimate",
    "Token: code on the reading node",
    "Events: code on the reading node",
    "transfer estimate is an ERC-20 transfer's",
    "t1 gasUsed within the estimate",
    "s1 receipt's five logs",
    "anonymous Raw log's topics",
    "token balances",
    "balance before t1's block",
    "s1 receipt on the reading node",
    "Transfer: the logs are the receipts'",
    "Transfer(from account 0)",
    "Transfer(any, to account 2)",
    "Transfer([account 0, account 1], account 2): OR in a position",
    "Transfer(account 1, account 1): none",
    "Transfer in t3's block only",
    "Tagged(\"beta\"): an indexed string",
    "anonymous log by its first topic",
    "getLogs with two addresses: every receipt's log, in order",
    "getLogs by blockHash",
    "getLogs with an unmatched topic",
    "getLogs for an address without logs",
    "require string: reason",
    "custom error InsufficientBalance(80, 10^30)",
    "custom error with an address TooLarge(5000, 1000, account 2)",
    "Panic(0x12)",
    "revert without data",
    "estimateGas reverts with TooLarge",
    "estimateGas reverts with a require string",
    "interface.parseError of the revert data",
    "eth_call's error: code 3, execution reverted, the revert data",
    "raw eth_subscribe newHeads answers a hex string id",
    "raw eth_subscribe logs answers a hex string id",
    "logs subscription, two addresses: every log of the later transactions",
    "contract.on(Transfer(from account 0))",
    "provider.on({address, topics: [Stored, null, key 7]})",
    "contract.on(Tagged(\"beta\"))",
    "newHeads: every block of the transactions",
    "newHeads: standard header fields",
    "newHeads header = eth_getBlockByNumber's",
    "raw logs notifications",
    "eth_unsubscribe answers true",
    "no newHeads after eth_unsubscribe",
];

/// Runs `contracts.mjs`, sending to `send` and reading and subscribing on
/// `read` (bounded), checks its summary and returns it.
fn check_contracts(send: &str, read: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let stdout_path = dir.path().join("stdout.json");
    let stderr_path = dir.path().join("stderr.txt");
    let mut child = Command::new("node")
        .current_dir(eth_dir())
        .arg("contracts.mjs")
        .arg(format!("http://{send}"))
        .arg(format!("http://{read}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + CONTRACTS_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("contracts.mjs ran past {CONTRACTS_TIMEOUT:?}: {stdout}{stderr}")
    });
    let r: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("contracts.mjs printed no summary ({e}): {stdout}{stderr}"));
    assert_eq!(r["failures"], serde_json::json!([]), "{r:#}{stderr}");
    assert_eq!(r["ok"], true, "{r:#}{stderr}");
    assert!(status.success(), "{status}: {r}{stderr}");
    for name in CONTRACTS_REQUIRED_CHECKS {
        assert_eq!(
            r["checks"][name], true,
            "check {name:?} missing or failed: {r:#}"
        );
    }
    assert_eq!(r["chainId"], "1337", "{r}");
    // The standard test mnemonic's accounts 0, 1 and 2.
    let keys = palisade_node::dev_eth::DEV_EVM_ACCOUNTS;
    let accounts: Vec<String> = r["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_lowercase())
        .collect();
    assert_eq!(accounts, [keys[0].0, keys[1].0, keys[2].0], "{r}");
    // A fresh chain: account 0's first two creations.
    let sender = keys[0].0.parse().unwrap();
    for (name, nonce) in [("token", 0), ("events", 1)] {
        assert_eq!(
            r[name].as_str().unwrap().to_lowercase(),
            palisade_runtime::evm::create_address(&sender, nonce).to_string(),
            "{r}"
        );
    }
    r
}

/// solc-js compiles the ERC-20 and a contract with events and custom
/// errors; ethers deploys them on `palisade dev`, transfers, reads
/// balances, estimates gas, queries the events by indexed arguments
/// (eth_getLogs), decodes revert reasons and custom errors of failing
/// calls, and receives the events and new heads of later blocks over a
/// WebSocket subscription on the same port.
#[test]
fn ethers_compiles_deploys_queries_events_and_subscribes_on_palisade_dev() {
    if !ethers_ready() {
        return;
    }
    let node = DevNode::start();
    check_contracts(&node.rpc, &node.rpc);
}

/// The same on four validators: the transactions go to node 1, and node 2
/// answers the reads, log queries and subscriptions. Afterwards every node
/// returns the same logs for the token.
#[test]
fn ethers_contracts_events_and_subscriptions_across_a_four_validator_devnet() {
    if !ethers_ready() {
        return;
    }
    let mut net = palisade_tests::Devnet::generate_with(4, &["--dev-evm-accounts"]);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 2, std::time::Duration::from_secs(60));
    let r = check_contracts(&net.rpc_addr(1), &net.rpc_addr(2));
    let h = net.common_height(&[0, 1, 2, 3]);
    let filter = serde_json::json!([{
        "address": r["token"],
        "fromBlock": "0x1",
        "toBlock": format!("0x{h:x}"),
    }]);
    let logs: Vec<serde_json::Value> = (0..4)
        .map(|i| palisade_tests::rpc_call(&net.rpc_addr(i), "eth_getLogs", filter.clone()).unwrap())
        .collect();
    // The mint and three transfers.
    assert_eq!(logs[0].as_array().map(Vec::len), Some(4), "{logs:?}");
    assert!(logs.iter().all(|l| *l == logs[0]), "{logs:?}");
    net.stop_all();
}

/// An observer proposes nothing: an Ethereum transaction sent to it
/// reaches a block only through gossip to the validators.
#[test]
fn an_ethereum_transaction_sent_to_an_observer_is_gossiped_and_committed() {
    let mut net = palisade_tests::Devnet::generate_with(4, &["--dev-evm-accounts"]);
    let (mut observer, rpc, log) = net.start_observer();
    net.wait_height(&[0, 1, 2, 3], 2, std::time::Duration::from_secs(60));
    // The standard test mnemonic's account 1 pays account 0 1,000 wei
    // (EIP-1559, chain 1337, nonce 0): the vector of docs/spec.md.
    let raw = "0x02f86682053980808082520894f39fd6e51aad88f6f4ce6ab8827279cfffb922668203e880c001a0d9f5b74d0adc688537e00c2683b371660553d448017f908b9ada5b386c7b411ba0542f6d3954f3ab9f26faaea8f0139ec5435b7113d78ebb50a9d6d6929cbbdb89";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let hash = loop {
        // The observer needs a moment to connect and catch up.
        match palisade_tests::rpc_call(&rpc, "eth_sendRawTransaction", serde_json::json!([raw])) {
            Ok(h) => break h,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{e}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    };
    assert_eq!(
        hash,
        "0xa787808e70335da0629da586605e2d261f71e86c72fffdedbe58ca18f01a8774"
    );
    let receipt = loop {
        let r = palisade_tests::rpc_call(
            &net.rpc_addr(0),
            "eth_getTransactionReceipt",
            serde_json::json!([hash]),
        )
        .unwrap();
        if !r.is_null() || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = observer.kill();
    let _ = observer.wait();
    net.stop_all();
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    assert_eq!(
        receipt["from"], "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
        "{receipt}"
    );
}
