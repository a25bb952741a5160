//! End-to-end tests of Palisade: they start real `palisade` processes on
//! loopback and check what users see. Helpers live here; the tests are in
//! `tests/it/`.

#![forbid(unsafe_code)]

use std::path::PathBuf;

/// Path of the `palisade` binary built beside the running test executable
/// (`<target>/<profile>/deps/it-*` -> `<target>/<profile>/palisade`).
pub fn palisade_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PALISADE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    profile_dir.join("palisade")
}
