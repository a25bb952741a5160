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

use palisade_tests::{in_ci, DevNode};

fn eth_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eth")
}

/// Node.js, the locked packages and anvil, or (outside CI) a reason to skip.
fn anvil_ready() -> bool {
    let node = Command::new("node").arg("--version").output();
    let dir = eth_dir();
    let installed = [
        "node_modules/ethers/package.json",
        "node_modules/solc/package.json",
        "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil",
    ]
    .iter()
    .all(|p| dir.join(p).exists());
    match (node, installed) {
        (Ok(o), true) if o.status.success() => true,
        _ if in_ci() => panic!(
            "node and tests/eth/node_modules (ethers, solc, anvil) are required in CI (scripts/prereqs.sh test installs them)"
        ),
        _ => {
            eprintln!(
                "skipped: run `source scripts/prereqs.sh; prereqs test` to install node and tests/eth (ethers, solc, anvil)"
            );
            false
        }
    }
}

#[test]
fn the_same_transactions_give_the_same_results_as_anvil() {
    if !anvil_ready() {
        return;
    }
    let node = DevNode::start();
    let out = Command::new("node")
        .current_dir(eth_dir())
        .arg("differential.mjs")
        .arg(format!("http://{}", node.rpc))
        // Every difference fails the test: none is tolerated.
        .env_remove("PALISADE_CONFORMANCE_TOLERATE")
        .env_remove("ANVIL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "palisade and anvil differ (or the test failed):\n{stdout}{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let r: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
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
