//! End-to-end tests on real `palisade` processes.

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
