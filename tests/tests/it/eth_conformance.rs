//! Differential conformance against anvil: `tests/eth/differential.mjs`
//! signs each Ethereum transaction once and sends the same bytes to a
//! `palisade dev` node and to an anvil it starts (npm
//! `@foundry-rs/anvil-linux-amd64`, locked in `tests/eth`; Osaka, zero
//! fees), and compares receipts, transactions, eth_call results and state
//! after every step (`tests/eth/contracts/Conformance.sol`: storage
//! refunds, events, reverts, precompiles, CREATE/CREATE2, SELFDESTRUCT,
//! value, nested calls, introspection). The intended differences are in
//! docs/contracts.md, "Conformance with Ethereum".

use std::path::PathBuf;
use std::process::Command;

use palisade_tests::{clients_ready, run_summary, runs, DevNode};

fn eth_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eth")
}

/// Node.js, the locked packages and anvil, or (outside CI) a reason to skip.
fn anvil_ready() -> bool {
    let dir = eth_dir();
    let installed = [
        "node_modules/ethers/package.json",
        "node_modules/solc/package.json",
        "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil",
    ]
    .iter()
    .all(|p| dir.join(p).exists());
    clients_ready(
        runs("node", &["--version"]) && installed,
        "node and tests/eth/node_modules (ethers, solc, anvil)",
    )
}

#[test]
fn the_same_transactions_give_the_same_results_as_anvil() {
    if !anvil_ready() {
        return;
    }
    let node = DevNode::start();
    let r = run_summary(
        Command::new("node")
            .current_dir(eth_dir())
            .arg("differential.mjs")
            .arg(format!("http://{}", node.rpc))
            // Every difference fails the test: none is tolerated.
            .env_remove("PALISADE_CONFORMANCE_TOLERATE")
            .env_remove("ANVIL"),
        "palisade and anvil differ (or the test failed): ",
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["differences"], 0, "{r}");
    assert_eq!(r["tolerated"], serde_json::json!([]), "{r}");
    // Every step ran: transactions compared (receipt, transaction, state),
    // refusals both made, eth_calls, and the state reads after each step.
    assert!(r["txs"].as_u64().unwrap() >= 120, "{r}");
    assert!(r["rejected"].as_u64().unwrap() >= 6, "{r}");
    assert!(r["calls"].as_u64().unwrap() >= 100, "{r}");
    assert!(r["stateReads"].as_u64().unwrap() >= 10_000, "{r}");
    assert_eq!(r["bursts"][0]["txs"], 11, "{r}");
    // The intended differences, seen as documented.
    for k in [
        "outsiderRefusedByPalisade",
        "outsiderAcceptedByAnvil",
        "creatingCallRefusedByPalisade",
        "unprotectedLegacyRefusedByPalisade",
        "setCodeRefusedByPalisade",
    ] {
        assert_eq!(r["intended"][k], true, "{k}: {r}");
    }
    // BLOCKHASH gives the chain's own block hashes (checked against the
    // blocks in the script): not zero.
    assert_ne!(
        r["envDiffers"]["blockhash"]["palisade"],
        format!("0x{}", "0".repeat(64)),
        "{r}"
    );
}
