//! The binary's command line, as operators call it.

use std::process::Command;

use palisade_tests::palisade_bin;

#[test]
fn binary_reports_its_version() {
    let bin = palisade_bin();
    assert!(
        bin.exists(),
        "{} not found: build it first (scripts/test.sh does)",
        bin.display()
    );
    let out = Command::new(&bin).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("palisade "), "{text}");
}

#[test]
fn start_without_a_home_is_one_clear_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(palisade_bin())
        .arg("start")
        .arg("--home")
        .arg(dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("palisade init"),
        "{err}"
    );
}

/// Output piped into a reader that stops early (`palisade ... | head`) ends
/// the command quietly, as SIGPIPE ends other tools, not with an internal
/// error. The completion script is far larger than a pipe's buffer, so its
/// writes meet the closed pipe.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let mut child = Command::new(palisade_bin())
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("internal error"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}

/// The binary operators run has no way to misbehave on purpose: the
/// tests' Byzantine modes and failing tasks live in the separate test-only
/// `palisade-test-node` binary (before, `palisade start --byzantine MODE`
/// was a hidden option of every node).
#[test]
fn the_operator_binary_has_no_byzantine_mode() {
    let dir = tempfile::tempdir().unwrap();
    for (cmd, flag, value) in [
        ("start", "--byzantine", "equivocate"),
        ("start", "--byzantine", "bad-signatures"),
        ("start", "--fail-task", "sync:1"),
        ("dev", "--fail-task", "sync:1"),
    ] {
        let out = Command::new(palisade_bin())
            .args([cmd, "--home"])
            .arg(dir.path())
            .args([flag, value])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains(&format!("unexpected argument '{flag}'")),
            "{err}"
        );
    }
    let bin = std::fs::read(palisade_bin()).unwrap();
    for needle in [&b"BYZANTINE"[..], b"bad-signatures"] {
        assert!(
            !bin.windows(needle.len()).any(|w| w == needle),
            "the palisade binary still contains {:?}",
            String::from_utf8_lossy(needle)
        );
    }
}

#[test]
fn init_then_keys_show_and_genesis_validate() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = Command::new(palisade_bin())
        .args(["init", "--chain-id", "cli-test", "--home"])
        .arg(&home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = home.join("config/validator_key.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }
    let out = Command::new(palisade_bin())
        .args(["keys", "show"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("public_key: 0x") && text.contains("peer_id:    12D3"),
        "{text}"
    );

    let out = Command::new(palisade_bin())
        .args(["genesis", "validate"])
        .arg(home.join("config/genesis.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("genesis_hash: 0x"));

    // Initializing twice would overwrite keys: refused.
    let again = Command::new(palisade_bin())
        .args(["init", "--home"])
        .arg(&home)
        .output()
        .unwrap();
    assert!(!again.status.success());

    // A damaged key file is one clear error, not a panic.
    std::fs::write(&key, "{\"type\":\"ed25519\"}").unwrap();
    let out = Command::new(palisade_bin())
        .args(["keys", "show"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: ") && err.contains("not a palisade key file"),
        "{err}"
    );
}

#[test]
fn genesis_validate_rejects_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("genesis.json");
    std::fs::write(
        &path,
        r#"{"chain_id":"x","genesis_time_ms":1,"validators":[],"accounts":[]}"#,
    )
    .unwrap();
    let out = Command::new(palisade_bin())
        .args(["genesis", "validate"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `palisade` with `PALISADE_RPC` pointed at `node`.
fn cli(node: &palisade_tests::DevNode) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(palisade_bin());
    c.env("PALISADE_RPC", format!("http://{}", node.rpc));
    c.timeout(std::time::Duration::from_secs(60));
    c
}

fn stdout_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).to_string()
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).to_string()
}

#[test]
fn client_commands_against_a_dev_node() {
    let node = palisade_tests::DevNode::start();
    let admin = node.key_file(0);
    let dir = tempfile::tempdir().unwrap();
    let alice_key = dir.path().join("alice.json");
    let a = cli(&node)
        .args(["keys", "generate", "--output"])
        .arg(&alice_key)
        .assert()
        .success();
    let alice = stdout_of(&a)
        .lines()
        .find_map(|l| l.strip_prefix("address:    "))
        .unwrap()
        .to_string();

    // A transfer, waited for, in text and in JSON.
    let a = cli(&node)
        .args([
            "tx",
            "transfer",
            "--to",
            &alice,
            "--amount",
            "1000",
            "--wait",
            "--key-file",
        ])
        .arg(&admin)
        .assert()
        .success();
    assert!(stdout_of(&a).contains(": success"), "{}", stdout_of(&a));
    let a = cli(&node)
        .args([
            "tx",
            "grant",
            "--account",
            &alice,
            "--role",
            "member",
            "--wait",
        ])
        .args(["--output", "json", "--key-file"])
        .arg(&admin)
        .assert()
        .success();
    let receipt: serde_json::Value = serde_json::from_str(&stdout_of(&a)).unwrap();
    assert_eq!(receipt["success"], true);
    let tx_hash = receipt["txHash"].as_str().unwrap().to_string();

    // Alice writes data and spends; every other action kind goes through.
    for args in [
        vec![
            "put",
            "--namespace",
            "app",
            "--key",
            "greeting",
            "--value",
            "hello",
        ],
        vec!["delete", "--namespace", "app", "--key", "greeting"],
        vec!["burn", "--amount", "5"],
    ] {
        let a = cli(&node)
            .arg("tx")
            .args(&args)
            .args(["--wait", "--key-file"])
            .arg(&alice_key)
            .assert()
            .success();
        assert!(
            stdout_of(&a).contains("success"),
            "{args:?}: {}",
            stdout_of(&a)
        );
    }
    // Only an admin may grant roles: refused at admission, non-zero exit.
    let a = cli(&node)
        .args([
            "tx",
            "grant",
            "--account",
            &alice,
            "--role",
            "admin",
            "--wait",
            "--key-file",
        ])
        .arg(&alice_key)
        .assert()
        .failure();
    assert!(stderr_of(&a).contains("unauthorized"), "{}", stderr_of(&a));

    // Validator-set changes by the operator (power small enough that one
    // validator keeps more than two thirds).
    let a = cli(&node)
        .args(["status", "--output", "json"])
        .assert()
        .success();
    let status: serde_json::Value = serde_json::from_str(&stdout_of(&a)).unwrap();
    let own = status["validator"].as_str().unwrap().to_string();
    let newcomer = palisade_types::Keypair::from_seed([0x5a; 32])
        .public_key()
        .to_string();
    let node_key = palisade_types::Keypair::from_seed([0x5b; 32])
        .public_key()
        .to_string();
    for args in [
        vec![
            "validator-add",
            "--consensus-key",
            &newcomer,
            "--node-key",
            &node_key,
            "--power",
            "1",
        ],
        vec!["validator-remove", "--consensus-key", &newcomer],
        vec!["set-param", "--name", "max-value-bytes", "--value", "8192"],
        vec!["validator-power", "--consensus-key", &own, "--power", "12"],
    ] {
        let a = cli(&node)
            .arg("tx")
            .args(&args)
            .args(["--wait", "--key-file"])
            .arg(&admin)
            .assert()
            .success();
        assert!(
            stdout_of(&a).contains("success"),
            "{args:?}: {}",
            stdout_of(&a)
        );
    }

    // Queries.
    let a = cli(&node)
        .args(["query", "account", &alice])
        .assert()
        .success();
    let text = stdout_of(&a);
    assert!(
        text.contains("balance 995") && text.contains("member"),
        "{text}"
    );
    let a = cli(&node)
        .args(["query", "tx", &tx_hash])
        .assert()
        .success();
    assert!(stdout_of(&a).contains("success"));
    let a = cli(&node)
        .args(["query", "block", "1", "--output", "json"])
        .assert()
        .success();
    let block: serde_json::Value = serde_json::from_str(&stdout_of(&a)).unwrap();
    let hash = block["hash"].as_str().unwrap().to_string();
    cli(&node)
        .args(["query", "block", &hash])
        .assert()
        .success();
    let a = cli(&node).args(["query", "validators"]).assert().success();
    assert!(stdout_of(&a).contains("power 10"));
    let key = format!("0x{}", hex::encode(b"meta/params"));
    let a = cli(&node)
        .args(["query", "state", &key, "--prove"])
        .assert()
        .success();
    assert!(stdout_of(&a).starts_with("0x"), "{}", stdout_of(&a));
    let a = cli(&node).arg("status").assert().success();
    assert!(stdout_of(&a).contains("chain palisade-dev"));
    cli(&node).args(["completions", "bash"]).assert().success();

    // Bad input: one clear line each, non-zero exit.
    for (args, expect) in [
        (
            vec!["query", "block", "nonsense"],
            "neither a height nor a 0x-hash",
        ),
        (vec!["query", "block", "999999"], "no such block"),
        (vec!["query", "tx", "0x1234"], "expected 32 bytes"),
        (vec!["query", "account", "0xzz"], "invalid"),
    ] {
        let a = cli(&node).args(&args).assert().failure();
        let err = stderr_of(&a);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{err}"
        );
    }
    // Wrong chain id: refused before signing anything.
    let a = cli(&node)
        .args([
            "tx",
            "transfer",
            "--to",
            &alice,
            "--amount",
            "1",
            "--chain-id",
            "other",
        ])
        .arg("--key-file")
        .arg(&admin)
        .assert()
        .failure();
    assert!(
        stderr_of(&a).contains("serves chain palisade-dev"),
        "{}",
        stderr_of(&a)
    );
    // An oversized value is refused locally.
    let big = "x".repeat(70_000);
    let a = cli(&node)
        .args([
            "tx",
            "put",
            "--namespace",
            "app",
            "--key",
            "k",
            "--value",
            &big,
            "--key-file",
        ])
        .arg(&alice_key)
        .assert()
        .failure();
    assert!(stderr_of(&a).contains("at most"), "{}", stderr_of(&a));
    // A value within the wire bound but over the chain's limit: the node says no.
    let mid = "x".repeat(10_000); // over the 8,192 set above, under the default
    let a = cli(&node)
        .args([
            "tx",
            "put",
            "--namespace",
            "app",
            "--key",
            "k",
            "--value",
            &mid,
            "--key-file",
        ])
        .arg(&alice_key)
        .assert()
        .failure();
    assert!(
        stderr_of(&a).contains("too_large") || stderr_of(&a).contains("value_too_large"),
        "{}",
        stderr_of(&a)
    );
    // No key, a bad key file, an unreachable node.
    let a = cli(&node)
        .args(["tx", "burn", "--amount", "1"])
        .assert()
        .failure();
    assert!(stderr_of(&a).contains("--key-file"), "{}", stderr_of(&a));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "not json").unwrap();
    let a = cli(&node)
        .args(["tx", "burn", "--amount", "1", "--key-file"])
        .arg(&bad)
        .assert()
        .failure();
    assert!(
        stderr_of(&a).contains("not a palisade key file"),
        "{}",
        stderr_of(&a)
    );
    let a = assert_cmd::Command::new(palisade_bin())
        .args(["status", "--rpc", "http://127.0.0.1:1"])
        .assert()
        .failure();
    assert!(stderr_of(&a).contains("cannot reach"), "{}", stderr_of(&a));
    // An unknown subcommand.
    assert_cmd::Command::new(palisade_bin())
        .arg("frobnicate")
        .assert()
        .failure();
}

#[test]
fn testnet_generates_homes_that_validate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let a = assert_cmd::Command::new(palisade_bin())
        .args(["testnet", "--validators", "3", "--output"])
        .arg(&out)
        .assert()
        .success();
    assert!(stdout_of(&a).contains("testnet of 3 validators"));
    for i in 0..3 {
        let home = out.join(format!("node{i}"));
        assert_cmd::Command::new(palisade_bin())
            .args(["genesis", "validate"])
            .arg(home.join("config/genesis.json"))
            .assert()
            .success();
        let cfg = std::fs::read_to_string(home.join("config/config.toml")).unwrap();
        assert_eq!(cfg.matches("/p2p/").count(), 2, "node {i} peers: {cfg}");
    }
    // Refuses to overwrite.
    assert_cmd::Command::new(palisade_bin())
        .args(["testnet", "--validators", "3", "--output"])
        .arg(&out)
        .assert()
        .failure();
    // A second node on the same data directory is refused.
    let home = out.join("node0");
    let mut first = std::process::Command::new(palisade_bin())
        .arg("start")
        .arg("--home")
        .arg(&home)
        .args([
            "--metrics-listen",
            "127.0.0.1:0",
            "--rpc-listen",
            "127.0.0.1:0",
        ])
        .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until the first node holds the database (RocksDB's lock file).
    let lock = home.join("data/db/LOCK");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !lock.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(lock.exists(), "the first node did not open its database");
    let a = assert_cmd::Command::new(palisade_bin())
        .arg("start")
        .arg("--home")
        .arg(&home)
        .args([
            "--metrics-listen",
            "127.0.0.1:0",
            "--rpc-listen",
            "127.0.0.1:0",
        ])
        .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .failure();
    let _ = first.kill();
    let _ = first.wait();
    assert!(
        stderr_of(&a).contains("in use by another palisade process"),
        "{}",
        stderr_of(&a)
    );
}

/// `palisade init` for a new chain funds a separate admin account key,
/// written outside `config/` (the node never reads it) and owner-only; the
/// consensus key is never an account of the genesis.
#[test]
fn init_funds_a_separate_admin_key_never_the_consensus_key() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let a = assert_cmd::Command::new(palisade_bin())
        .args(["init", "--chain-id", "admin-test", "--home"])
        .arg(&home)
        .assert()
        .success();
    let admin_file = home.join("admin_key.json");
    let admin = palisade_node::home::read_key(&admin_file)
        .unwrap_or_else(|e| panic!("no admin key written by init: {e}"));
    assert!(
        stdout_of(&a).contains(&admin.address().to_string())
            && stdout_of(&a).contains(&admin_file.display().to_string()),
        "init did not print the admin key: {}",
        stdout_of(&a)
    );
    let validator = palisade_node::home::read_key(&home.join("config/validator_key.json")).unwrap();
    let node = palisade_node::home::read_key(&home.join("config/node_key.json")).unwrap();
    let genesis = palisade_genesis::Genesis::from_file(&home.join("config/genesis.json")).unwrap();
    assert_eq!(genesis.validators.len(), 1);
    assert_eq!(genesis.validators[0].consensus_key, validator.public_key());
    for k in [&validator, &node] {
        assert!(
            genesis
                .accounts
                .iter()
                .all(|acct| acct.address != k.address()),
            "a node key ({}) is a genesis account",
            k.address()
        );
    }
    let funded: Vec<_> = genesis
        .accounts
        .iter()
        .filter(|acct| acct.roles.contains(&palisade_types::Role::Admin))
        .collect();
    assert_eq!(funded.len(), 1, "{:?}", genesis.accounts);
    assert_eq!(funded[0].address, admin.address());
    assert!(funded[0].balance > 0);

    // Joining an existing chain creates no admin key.
    let joined = dir.path().join("joined");
    assert_cmd::Command::new(palisade_bin())
        .args(["init", "--home"])
        .arg(&joined)
        .arg("--genesis")
        .arg(home.join("config/genesis.json"))
        .assert()
        .success();
    assert!(!joined.join("admin_key.json").exists());
}

/// `palisade start` with `--home` and ports no other test uses.
fn start_cmd(home: &std::path::Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(palisade_bin());
    c.arg("start")
        .arg("--home")
        .arg(home)
        .args([
            "--metrics-listen",
            "127.0.0.1:0",
            "--rpc-listen",
            "127.0.0.1:0",
        ])
        .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
        .env_remove("PALISADE_ALLOW_INSECURE_KEY_PERMISSIONS")
        .timeout(std::time::Duration::from_secs(10));
    c
}

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A key file that group or others can read is refused when a node starts
/// or a transaction is signed, with the chmod to run; only an explicit flag
/// (or its environment variable) accepts it.
#[test]
fn key_files_others_can_read_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert_cmd::Command::new(palisade_bin())
        .args(["init", "--home"])
        .arg(&home)
        .assert()
        .success();
    for (file, mode) in [("validator_key.json", 0o644), ("node_key.json", 0o640)] {
        let key = home.join("config").join(file);
        chmod(&key, mode);
        let a = start_cmd(&home).assert().failure();
        let err = stderr_of(&a);
        assert!(
            err.contains(&format!("chmod 600 {}", key.display())),
            "start with {file} mode {mode:o}: {err}"
        );
        chmod(&key, 0o600);
    }

    // Accepted with the flag, or with the environment variable: the node
    // runs (until the timeout kills it) and warns.
    let validator_key = home.join("config/validator_key.json");
    chmod(&validator_key, 0o604);
    for allow in [
        start_cmd(&home)
            .arg("--allow-insecure-key-permissions")
            .timeout(std::time::Duration::from_secs(4))
            .assert(),
        start_cmd(&home)
            .env("PALISADE_ALLOW_INSECURE_KEY_PERMISSIONS", "true")
            .timeout(std::time::Duration::from_secs(4))
            .assert(),
    ] {
        let err = stderr_of(&allow);
        assert!(
            err.contains("readable by group or others") && !err.contains("error:"),
            "{err}"
        );
    }

    // Signing a transaction: refused before any node is contacted.
    let a = assert_cmd::Command::new(palisade_bin())
        .args(["tx", "burn", "--amount", "1", "--rpc", "http://127.0.0.1:1"])
        .arg("--key-file")
        .arg(&validator_key)
        .env_remove("PALISADE_ALLOW_INSECURE_KEY_PERMISSIONS")
        .assert()
        .failure();
    assert!(
        stderr_of(&a).contains(&format!("chmod 600 {}", validator_key.display())),
        "{}",
        stderr_of(&a)
    );
    // With the flag it gets as far as the (absent) node.
    let a = assert_cmd::Command::new(palisade_bin())
        .args(["tx", "burn", "--amount", "1", "--rpc", "http://127.0.0.1:1"])
        .arg("--key-file")
        .arg(&validator_key)
        .arg("--allow-insecure-key-permissions")
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(
        err.starts_with("warning:") && !err.contains("refusing to use it"),
        "{err}"
    );
    assert!(err.contains("127.0.0.1:1"), "{err}");

    // Showing the public key is allowed, with the warning.
    let a = assert_cmd::Command::new(palisade_bin())
        .args(["keys", "show"])
        .arg(&validator_key)
        .assert()
        .success();
    assert!(stdout_of(&a).contains("public_key: 0x"));
    assert!(stderr_of(&a).contains("chmod 600"), "{}", stderr_of(&a));
}

/// `palisade dev` without `--home` removes the temporary home it made when
/// stopped with SIGTERM (as with Ctrl-C), unless `--keep` (issue 27).
#[test]
fn dev_removes_its_temporary_home_on_exit_unless_kept() {
    for keep in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(palisade_bin());
        cmd.env("TMPDIR", tmp.path())
            .args(["dev", "--rpc-listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
            .stdout(std::fs::File::create(tmp.path().join("out.txt")).unwrap())
            .stderr(std::process::Stdio::null());
        if keep {
            cmd.arg("--keep");
        }
        let mut child = cmd.spawn().unwrap();
        let homes = || -> Vec<std::path::PathBuf> {
            std::fs::read_dir(tmp.path())
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| p.is_dir())
                        .collect()
                })
                .unwrap_or_default()
        };
        // Until the chain is up: its database is open and its banner,
        // printed once the servers are bound, is out.
        let out = tmp.path().join("out.txt");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !homes().iter().any(|h| h.join("data/db/LOCK").exists())
            || !std::fs::read_to_string(&out)
                .unwrap_or_default()
                .contains("Ctrl-C stops the chain.")
        {
            assert!(std::time::Instant::now() < deadline, "dev never started");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("dev did not stop on SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(status.success(), "{status}");
        // The accounts' roles as granted, not a fixed label.
        let out = std::fs::read_to_string(tmp.path().join("out.txt")).unwrap();
        assert!(
            out.lines().any(|l| l.contains("#0 ")
                && l.ends_with("roles: admin, validator_operator, member, minter, deployer")),
            "{out}"
        );
        assert!(
            out.lines()
                .any(|l| l.contains("#1 ") && l.ends_with("roles: member, deployer")),
            "{out}"
        );
        let left = homes();
        if keep {
            assert_eq!(left.len(), 1, "{left:?}");
            assert!(left[0].join("config/genesis.json").exists());
        } else {
            assert!(left.is_empty(), "left behind: {left:?}");
        }
    }
}

/// Every setting can come from a `PALISADE_*` variable, for `start` as for
/// `config show`, which names the variable as the value's source; a flag
/// wins over the variable (issue 27).
#[test]
fn settings_from_the_environment_reach_the_node_and_config_show_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert_cmd::Command::new(palisade_bin())
        .args(["init", "--home"])
        .arg(&home)
        .assert()
        .success();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rpc = format!("127.0.0.1:{port}");
    let a = assert_cmd::Command::new(palisade_bin())
        .args(["config", "show", "--home"])
        .arg(&home)
        .args(["--set", "mempool.max_txs=1234"])
        .env("PALISADE_RPC_LISTEN", &rpc)
        .env("PALISADE_RPC_MAX_BATCH", "7")
        .env("PALISADE_MEMPOOL_MAX_TXS", "999")
        .assert()
        .success();
    let shown = stdout_of(&a);
    for line in [
        format!("listen = \"{rpc}\""),
        "max_batch = 7".to_string(),
        "max_txs = 1234".to_string(),
    ] {
        assert!(shown.contains(&line), "{line} missing:\n{shown}");
    }
    assert!(shown.contains("# from PALISADE_RPC_MAX_BATCH;"), "{shown}");
    assert!(shown.contains("# from --set mempool.max_txs;"), "{shown}");

    // The node runs with them: RPC where the variable says, its limits as set.
    let mut node = std::process::Command::new(palisade_bin())
        .args(["start", "--home"])
        .arg(&home)
        .env("PALISADE_RPC_LISTEN", &rpc)
        .env("PALISADE_METRICS_LISTEN", "127.0.0.1:0")
        .env("PALISADE_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0")
        .env("PALISADE_MEMPOOL_MAX_TXS", "999")
        .env("PALISADE_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        match palisade_tests::rpc_call(&rpc, "mempool_status", serde_json::json!([])) {
            Ok(v) => break Ok(v),
            Err(e) if std::time::Instant::now() > deadline => break Err(e),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    };
    let _ = node.kill();
    let _ = node.wait();
    let status = status.expect("the node serves RPC at PALISADE_RPC_LISTEN");
    assert_eq!(status["maxTxs"], 999, "{status}");

    // A variable that names no setting stops the node before it starts.
    let a = start_cmd(&home)
        .env("PALISADE_RPC_MAX_BATH", "7")
        .assert()
        .failure();
    assert!(
        stderr_of(&a).contains("PALISADE_RPC_MAX_BATH is not a setting"),
        "{}",
        stderr_of(&a)
    );
}

/// `palisade dev` with port 0 for RPC and metrics prints the ports the
/// system chose, and they answer (issue 27: it printed port 0).
#[test]
fn dev_prints_the_ports_it_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.txt");
    let mut child = Command::new(palisade_bin())
        .args(["dev", "--home"])
        .arg(tmp.path().join("home"))
        .args(["--rpc-listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let t = std::fs::read_to_string(&out).unwrap_or_default();
        if t.contains("Ctrl-C stops the chain.") {
            break t;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("dev printed no banner: {t}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let addr_after = |prefix: &str| -> std::net::SocketAddr {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line: {text}"));
        let url = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("{line}"));
        url.trim_start_matches("http://")
            .trim_end_matches("/metrics")
            .parse()
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    };
    let rpc = addr_after("rpc ");
    let metrics = addr_after("metrics ");
    assert_ne!(rpc.port(), 0, "{text}");
    assert_ne!(metrics.port(), 0, "{text}");
    assert!(text.contains(&format!("ws://{rpc}")), "{text}");
    let height =
        palisade_tests::rpc_call(&rpc.to_string(), "chain_getHeight", serde_json::json!([]));
    let metrics_body = palisade_tests::http_get(&metrics.to_string(), "/metrics");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        height.is_ok_and(|h| h.is_u64()),
        "rpc at {rpc} does not answer"
    );
    assert!(
        metrics_body.is_some_and(|b| b.contains("palisade_")),
        "metrics at {metrics} do not answer"
    );
}

/// `palisade init --no-genesis` (a validator in a genesis ceremony) writes
/// keys and config but no genesis, prints the public parts and the
/// `genesis add-validator` line for the coordinator, and the node refuses
/// to start until the genesis is in place, naming where it goes.
#[test]
fn init_without_genesis_prints_the_ceremony_line_and_start_says_where_genesis_goes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let a = assert_cmd::Command::new(palisade_bin())
        .args(["init", "--no-genesis", "--moniker", "validator-7", "--home"])
        .arg(&home)
        .args(["--p2p-listen", "/ip4/10.1.2.3/tcp/26700"])
        .assert()
        .success();
    let out = stdout_of(&a);
    let node = palisade_node::home::read_key(&home.join("config/node_key.json")).unwrap();
    let validator = palisade_node::home::read_key(&home.join("config/validator_key.json")).unwrap();
    let peer_id = palisade_network::peer_id_of(&node.public_key()).unwrap();
    for line in [
        format!("node_key:      {}", node.public_key()),
        format!("consensus_key: {}", validator.public_key()),
        format!("p2p_address:   /ip4/10.1.2.3/tcp/26700/p2p/{peer_id}"),
        format!(
            "palisade genesis add-validator genesis.json --name validator-7 --consensus-key {} --node-key {} --power 10",
            validator.public_key(),
            node.public_key()
        ),
    ] {
        assert!(out.contains(&line), "no {line:?} in:\n{out}");
    }
    assert!(!home.join("config/genesis.json").exists());
    assert!(!home.join("admin_key.json").exists());
    let cfg = palisade_node::config::NodeConfig::load(&home.join("config/config.toml")).unwrap();
    assert_eq!(cfg.p2p.listen, vec!["/ip4/10.1.2.3/tcp/26700".to_string()]);

    let a = start_cmd(&home).assert().failure();
    let err = stderr_of(&a);
    assert!(
        err.contains("no genesis file")
            && err.contains(&home.join("config/genesis.json").display().to_string()),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // A bad flag leaves no half-made home behind.
    let bad = dir.path().join("bad");
    assert_cmd::Command::new(palisade_bin())
        .args([
            "init",
            "--no-genesis",
            "--p2p-listen",
            "not-an-address",
            "--home",
        ])
        .arg(&bad)
        .assert()
        .failure();
    assert!(!bad.exists());
    // --no-genesis makes no chain, so a chain id is a mistake.
    assert_cmd::Command::new(palisade_bin())
        .args(["init", "--no-genesis", "--chain-id", "x", "--home"])
        .arg(&bad)
        .assert()
        .failure();
}

/// `tx evm-create`, `tx evm-call` and EVM roles from the command line: the
/// solc-compiled ERC-20 of the runtime's tests deployed from a file, a
/// token transfer with its log, a revert with its reason and a non-zero
/// exit, and a role granted to a 20-byte address (and refused for one it
/// cannot hold).
#[test]
fn evm_contracts_from_the_command_line() {
    let node = palisade_tests::DevNode::start();
    let admin = node.key_file(0);
    let bob = node.key_file(1);
    let dir = tempfile::tempdir().unwrap();
    let token: serde_json::Value =
        serde_json::from_str(include_str!("../../../runtime/tests/fixtures/Token.json")).unwrap();
    let mut supply = [0u8; 32];
    supply[30..].copy_from_slice(&1000u16.to_be_bytes());
    let code = format!(
        "{}{}\n",
        token["bytecode"].as_str().unwrap(),
        hex::encode(supply)
    );
    let code_file = dir.path().join("token.bin");
    std::fs::write(&code_file, code).unwrap();
    let a = cli(&node)
        .args(["tx", "evm-create", "--wait", "--code"])
        .arg(format!("@{}", code_file.display()))
        .arg("--key-file")
        .arg(&admin)
        .assert()
        .success();
    let out = stdout_of(&a);
    let contract = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("contract "))
        .unwrap_or_else(|| panic!("no contract address: {out}"))
        .to_string();

    // Bob's EVM address, as `query account` prints it.
    let bob_address = palisade_node::cli::devnet::dev_account(1)
        .address()
        .to_string();
    let a = cli(&node)
        .args(["query", "account", &bob_address])
        .assert()
        .success();
    let bob_evm = stdout_of(&a)
        .lines()
        .find_map(|l| l.trim().strip_prefix("evm "))
        .unwrap()
        .trim()
        .to_string();
    let word = |hex20: &str| format!("{:0>64}", hex20.trim_start_matches("0x"));
    let selector = |sig: &str| hex::encode(revm_selector(sig));
    let transfer = format!(
        "0x{}{}{:064x}",
        selector("transfer(address,uint256)"),
        word(&bob_evm),
        7
    );
    let a = cli(&node)
        .args(["tx", "evm-call", "--to", &contract, "--data", &transfer])
        .args(["--wait", "--key-file"])
        .arg(&admin)
        .assert()
        .success();
    let out = stdout_of(&a);
    assert!(out.contains(": success") && out.contains("logs 1"), "{out}");

    // Bob spends without an allowance: reverted, with the reason.
    let admin_evm =
        palisade_runtime::evm::evm_address(&palisade_node::cli::devnet::dev_account(0).address());
    let transfer_from = format!(
        "0x{}{}{}{:064x}",
        selector("transferFrom(address,address,uint256)"),
        word(&admin_evm.to_string()),
        word(&bob_evm),
        1
    );
    let a = cli(&node)
        .args([
            "tx",
            "evm-call",
            "--to",
            &contract,
            "--data",
            &transfer_from,
        ])
        .args(["--wait", "--key-file"])
        .arg(&bob)
        .assert()
        .failure();
    let out = stdout_of(&a);
    assert!(
        out.contains("FAILED code 40: execution reverted: allowance exceeded"),
        "{out}"
    );

    // Roles for a 20-byte address: member yes, admin no.
    let outsider = "0x00000000000000000000000000000000000000aa";
    cli(&node)
        .args(["tx", "grant", "--account", outsider, "--role", "member"])
        .args(["--wait", "--key-file"])
        .arg(&admin)
        .assert()
        .success();
    let a = cli(&node)
        .args(["tx", "grant", "--account", outsider, "--role", "admin"])
        .args(["--wait", "--key-file"])
        .arg(&admin)
        .assert()
        .failure();
    assert!(
        stderr_of(&a).contains("role_not_for_evm_address"),
        "{}",
        stderr_of(&a)
    );
    // A malformed address is refused before anything is sent.
    let a = cli(&node)
        .args(["tx", "grant", "--account", "0x1234", "--role", "member"])
        .arg("--key-file")
        .arg(&admin)
        .assert()
        .failure();
    assert!(stderr_of(&a).contains("hex digits"), "{}", stderr_of(&a));
}

fn revm_selector(signature: &str) -> [u8; 4] {
    let h = palisade_runtime::evm::keccak256(signature.as_bytes());
    [h[0], h[1], h[2], h[3]]
}
