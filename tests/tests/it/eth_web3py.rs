//! web3.py and eth-account (Python; pinned with hashes in
//! `tests/py/requirements.txt`, installed into `tests/py/.venv` by the test
//! prerequisites) against a `palisade dev` node: the ERC-20 compiled by
//! solc-js (`tests/eth/compile.mjs`) is deployed, called and paid with
//! EIP-1559 transactions signed locally by eth-account, as a Python dapp
//! would. `tests/py/web3_flow.py` checks each step as it goes; this checks
//! the summary it prints.

use std::path::{Path, PathBuf};
use std::process::Command;

use palisade_tests::{clients_ready, runs, DevNode};

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv_python() -> PathBuf {
    tests_dir().join("py/.venv/bin/python")
}

/// The virtual environment with web3.py, and Node.js with solc-js, or
/// (outside CI) a reason to skip.
fn web3py_ready() -> bool {
    clients_ready(
        runs(venv_python(), &["-c", "import web3, eth_account"])
            && runs("node", &["--version"])
            && tests_dir()
                .join("eth/node_modules/solc/package.json")
                .exists(),
        "tests/py/.venv (web3.py), node and tests/eth/node_modules",
    )
}

/// Compiles the runtime's test ERC-20 with solc-js into `dir`; the path of
/// the `{Token: {abi, bytecode, deployedBytecode}}` file.
fn compile_token(dir: &Path) -> PathBuf {
    let out_file = dir.join("contracts.json");
    let out = Command::new("node")
        .current_dir(tests_dir().join("eth"))
        .arg("compile.mjs")
        .arg(&out_file)
        .arg(tests_dir().join("../runtime/tests/fixtures/Token.sol"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "compile.mjs: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out_file
}

/// The version `tests/py/requirements.txt` pins for `package`.
fn pinned(package: &str) -> String {
    let reqs = std::fs::read_to_string(tests_dir().join("py/requirements.txt")).unwrap();
    let prefix = format!("{package}==");
    reqs.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|rest| rest.trim_end_matches(['\\', ' ']).to_string())
        .unwrap_or_else(|| panic!("requirements.txt pins no {package}"))
}

#[test]
fn web3py_deploys_calls_and_pays_with_eip1559_transactions() {
    if !web3py_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let contracts = compile_token(dir.path());
    let node = DevNode::start();
    let keys = palisade_node::dev_eth::DEV_EVM_ACCOUNTS;
    let out = Command::new(venv_python())
        .arg(tests_dir().join("py/web3_flow.py"))
        .arg(format!("http://{}", node.rpc))
        .arg(&contracts)
        .arg(keys[0].1)
        .arg(keys[1].1)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}\nnode log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        node.log()
    );
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // The pinned libraries ran, not some other installed copy.
    assert_eq!(r["web3"], pinned("web3"), "{r}");
    assert_eq!(r["ethAccount"], pinned("eth-account"), "{r}");
    assert_eq!(r["chainId"], 1337, "{r}");
    // A gas-free chain: base fee, gas price and suggested tip are 0, and
    // web3.py's own EIP-1559 fees are then 0 too.
    assert_eq!(r["baseFeePerGas"], 0, "{r}");
    assert_eq!(r["defaultMaxFeePerGas"], 0, "{r}");
    assert_eq!(r["defaultMaxPriorityFeePerGas"], 0, "{r}");
    // The deployment: CREATE from account 0 at EVM nonce 0.
    let expected = palisade_runtime::evm::create_address(&keys[0].0.parse().unwrap(), 0);
    assert_eq!(
        r["tokenAddress"].as_str().unwrap().to_lowercase(),
        expected.to_string(),
        "{r}"
    );
    assert_eq!(r["deployStatus"], 1, "{r}");
    assert_eq!(r["deployType"], 2, "{r}");
    assert!(r["codeLength"].as_u64().unwrap() > 100, "{r}");
    assert_eq!(r["name"], "Palisade Test Token", "{r}");
    assert_eq!(r["totalSupply"], 1000, "{r}");
    let estimate = r["transferEstimate"].as_u64().unwrap();
    assert!((30_000..100_000).contains(&estimate), "{r}");
    assert_eq!(r["transferEvents"][0][0], "Transfer", "{r}");
    assert_eq!(r["balance0"], 975, "{r}");
    assert_eq!(r["balance1"], 25, "{r}");
    for how in ["call", "estimate_gas"] {
        assert_eq!(
            r[format!("customError_{how}")],
            "InsufficientBalance(25,1000000000000000000000000000000)",
            "{r}"
        );
    }
    assert_eq!(
        r["revertReason"], "execution reverted: allowance exceeded",
        "{r}"
    );
    // The value transfer, at effective gas price 0: exactly the value moved.
    assert_eq!(r["received"], 12345, "{r}");
    assert_eq!(r["paid"], 12345, "{r}");
    assert_eq!(r["txType"], 2, "{r}");
    assert_eq!(r["receiptType"], 2, "{r}");
    assert_eq!(r["receiptStatus"], 1, "{r}");
    assert_eq!(r["effectiveGasPrice"], 0, "{r}");
    assert!(r["blockNumber"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["failedStatus"], 0, "{r}");
    assert!(r["outsider"].as_str().unwrap().contains("member"), "{r}");
    // Deployment, token transfer and value transfer.
    assert_eq!(r["nonce0"], 3, "{r}");
}
