//! A bounded memo of signatures that verified, so that the same signed
//! bytes are not verified twice by one process.
//!
//! A validator's vote is checked when it arrives from the network, again
//! by the consensus state machine (which trusts no caller), and once more
//! inside the next block's `last_commit` certificate; without the memo an
//! idle chain spent about a sixth of its CPU re-verifying votes. Entries
//! are SHA-256 of (key, signature, message), and only successful
//! verifications are kept, so a hit is exactly "these bytes verified
//! before": the verdict cannot differ from verifying again, and a forged
//! signature would need a SHA-256 collision to hit.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

/// Entries per generation (two generations: some 4 MiB at most).
const CAPACITY: usize = 1 << 16;

#[derive(Default)]
struct Memo {
    young: HashSet<[u8; 32]>,
    old: HashSet<[u8; 32]>,
}

fn memo() -> &'static Mutex<Memo> {
    static MEMO: OnceLock<Mutex<Memo>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(Memo::default()))
}

/// `verify`'s verdict on a signature by `key` over `message`, or `Ok` at
/// once if those exact bytes verified before; a success is remembered.
pub(crate) fn or_verify<E>(
    key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
    verify: impl FnOnce() -> Result<(), E>,
) -> Result<(), E> {
    let entry = entry(key, message, signature);
    if seen(&entry) {
        return Ok(());
    }
    verify()?;
    remember(entry);
    Ok(())
}

/// The memo key of a signature by `key` over `message`.
fn entry(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"palisade/verified/v1");
    h.update(key);
    h.update(signature);
    h.update(message);
    h.finalize().into()
}

/// Whether `entry` verified before.
fn seen(entry: &[u8; 32]) -> bool {
    let Ok(mut m) = memo().lock() else {
        return false;
    };
    if m.young.contains(entry) {
        return true;
    }
    if m.old.remove(entry) {
        m.young.insert(*entry);
        return true;
    }
    false
}

/// Records that `entry` verified.
fn remember(entry: [u8; 32]) {
    let Ok(mut m) = memo().lock() else {
        return;
    };
    if m.young.len() >= CAPACITY {
        m.old = std::mem::take(&mut m.young);
    }
    m.young.insert(entry);
}
