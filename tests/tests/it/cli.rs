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
