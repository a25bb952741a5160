//! Snapshots end to end: a running validator writes them by itself; one is
//! exported, checked, and imported into a wiped validator, which then
//! block-syncs from the snapshot's height and takes part in consensus again.

use std::process::Command;
use std::time::Duration;

use palisade_tests::{palisade_bin, Devnet};

fn palisade(args: &[&str]) -> std::process::Output {
    Command::new(palisade_bin())
        .args(args)
        .output()
        .expect("run palisade")
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_wiped_validator_comes_back_from_another_nodes_snapshot() {
    // 50,000 funded accounts (and as many Ethereum ones): a state of some
    // 100,000 entries, so the snapshot has many chunks.
    let mut net = Devnet::generate_with(4, &["--bench-accounts", "50000"]);
    net.start_with(0, &["--set", "statesync.snapshot_interval=10"]);
    for i in 1..4 {
        net.start(i);
    }
    net.wait_height(&[0, 1, 2, 3], 12, Duration::from_secs(120));
    let home0 = net.home(0);
    let home0 = home0.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.snap");
    let file = file.to_str().unwrap();
    // Exported from the running node: its snapshots are whole files.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = palisade(&["snapshot", "export", file, "--home", home0]);
        if out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let home3 = net.home(3);
    let home3s = home3.to_str().unwrap();
    let checked: serde_json::Value = serde_json::from_str(&ok(&palisade(&[
        "snapshot", "verify", file, "--home", home3s, "--output", "json",
    ])))
    .unwrap();
    let height = checked["height"].as_u64().unwrap();
    assert!(height >= 10 && height.is_multiple_of(10), "{checked}");
    assert!(checked["chunks"].as_u64().unwrap() > 1, "{checked}");

    // A damaged copy is refused, naming the chunk.
    let bad = dir.path().join("bad.snap");
    let mut bytes = std::fs::read(file).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&bad, bytes).unwrap();
    let out = palisade(&[
        "snapshot",
        "verify",
        bad.to_str().unwrap(),
        "--home",
        home3s,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chunk 0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Node 3 loses its data directory (its signer state lives with its
    // keys, so it cannot sign twice).
    net.stop(3);
    std::fs::remove_dir_all(home3.join("data")).unwrap();
    let imported: serde_json::Value = serde_json::from_str(&ok(&palisade(&[
        "snapshot", "import", file, "--home", home3s, "--output", "json",
    ])))
    .unwrap();
    assert_eq!(imported["stateRoot"], checked["stateRoot"]);
    {
        let ledger = net.ledger(3);
        assert_eq!(ledger.latest_height().unwrap().get(), height);
        assert_eq!(
            ledger.state_root(palisade_types::Height(height)).unwrap(),
            Some(serde_json::from_value(checked["stateRoot"].clone()).unwrap())
        );
        assert_eq!(ledger.earliest_block().unwrap().get(), height + 1);
    }
    // A second import into the now non-empty node is refused.
    let again = palisade(&["snapshot", "import", file, "--home", home3s]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a chain"));

    net.start(3);
    let top = net.top_height(&[0, 1, 2]);
    net.wait_height(&[3], top + 2, Duration::from_secs(120));
    // With node 0 stopped, the other three must agree to commit: node 3
    // votes, so it holds the same state as everyone.
    net.stop(0);
    let now = net.top_height(&[1, 2, 3]);
    net.wait_height(&[1, 2, 3], now + 3, Duration::from_secs(120));
    let log = net.log(3);
    assert!(
        !log.contains("could not be executed"),
        "{}",
        net.log_tail(3)
    );
}
