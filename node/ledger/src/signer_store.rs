//! The consensus signer state on disk (`config/signer_state`, beside the
//! validator key; earlier versions kept it in `data/signer_state`, see
//! [`migrate`]).
//!
//! Saved before any vote or proposal leaves the node and loaded at start,
//! so a restarted validator re-sends what it signed instead of signing
//! something else.
//!
//! The file holds two copies of the state, each in its own fixed-size
//! slot, and every save overwrites both in place, one after the other, each
//! made durable (`fdatasync`) before the next write starts. Why two
//! copies, both written: a crash tears at most the slot being written, and
//! whichever slot survives holds either the state of the last message sent
//! or the newer one whose message never left. Either is safe to resume
//! from, so load takes the intact copy with the higher sequence number. A
//! copy damaged later (bit rot) is recovered from the other one for the
//! same reason. Only when neither copy is intact does the node refuse to
//! start (guessing could mean double signing).
//!
//! Why in place: the file keeps its size and blocks, so `fdatasync` flushes
//! two small writes and no file-system metadata. The write-a-temporary,
//! rename and fsync-the-directory protocol this replaced cost 1.5–2 ms a
//! save on a busy devnet, three times on every height's critical path. That
//! protocol is still used when the file is created, when a state outgrows
//! its slot, when the path no longer names the open file (deleted or
//! replaced under a running node), and for the first save of each run
//! (which also upgrades a file written by an older version).
//!
//! Layout (all integers little-endian); `docs/operators.md` has a vector:
//!
//! ```text
//! file   = slot0 || slot1                          both `slot` bytes; `slot` a multiple of 4096
//! slot   = "PSS2" || seq u64 || len u32 || state || sha256(all before it) || zero padding
//! state  = borsh(SignerState), `len` bytes
//! ```
//!
//! A file written by earlier versions (`"PSS1" || state || sha256`, one
//! copy) still loads.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use palisade_consensus::{SignerState, Step};
use palisade_types::{Height, Round};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 4] = b"PSS2";
/// The single-copy format of earlier versions; loaded, never written.
const MAGIC_V1: &[u8; 4] = b"PSS1";
/// Magic, sequence number and state length.
const HEADER: usize = 4 + 8 + 4;
const CHECKSUM: usize = 32;
/// Slots are whole pages, so overwriting one never touches the other's.
const SLOT_ALIGN: usize = 4096;
/// Far above any real state (a proposal and two votes, a lock and a polka
/// of a few thousand validators).
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SignerStoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signer state file {path} is damaged ({reason}); refusing to sign until an operator restores it or removes it knowingly")]
    Corrupt { path: PathBuf, reason: String },
    #[error("signer state of {0} bytes does not fit the signer state file")]
    TooLarge(usize),
}

/// The file as this process last wrote it: where in-place saves go.
#[derive(Debug)]
struct Written {
    file: File,
    slot: usize,
    seq: u64,
}

/// Reads and durably writes the signer state file.
#[derive(Debug)]
pub struct SignerStore {
    path: PathBuf,
    written: Option<Written>,
}

impl SignerStore {
    pub fn new(path: impl Into<PathBuf>) -> SignerStore {
        SignerStore {
            path: path.into(),
            written: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> SignerStoreError {
        SignerStoreError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> SignerStoreError {
        SignerStoreError::Corrupt {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// The saved state; the default (nothing signed) when no file exists yet.
    pub fn load(&self) -> Result<SignerState, SignerStoreError> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SignerState::default()),
            Err(e) => return Err(self.io(e)),
        };
        if meta.len() > MAX_FILE_BYTES {
            return Err(self.corrupt(format!("{} bytes is too large", meta.len())));
        }
        let bytes = std::fs::read(&self.path).map_err(|e| self.io(e))?;
        if bytes.starts_with(MAGIC_V1) {
            return self.load_v1(&bytes);
        }
        let slot = bytes.len() / 2;
        if !bytes.len().is_multiple_of(2 * SLOT_ALIGN) || slot == 0 {
            return Err(self.corrupt(format!(
                "{} bytes is not two whole slots; not a palisade signer state file",
                bytes.len()
            )));
        }
        let (first, second) = bytes.split_at(slot);
        match (parse_slot(first), parse_slot(second)) {
            (Ok((a, sa)), Ok((b, sb))) => Ok(if b > a { sb } else { sa }),
            (Ok((_, s)), Err(damaged)) | (Err(damaged), Ok((_, s))) => {
                // Expected after a crash in the middle of a save; the
                // other copy is at least as new as anything sent.
                tracing::warn!(path = %self.path.display(), damaged, "one copy of the signer state is damaged; using the other");
                Ok(s)
            }
            (Err(a), Err(b)) => Err(self.corrupt(format!("both copies: {a}; {b}"))),
        }
    }

    fn load_v1(&self, bytes: &[u8]) -> Result<SignerState, SignerStoreError> {
        if bytes.len() < MAGIC_V1.len() + CHECKSUM {
            return Err(self.corrupt("not a palisade signer state file"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
        if Sha256::digest(body).as_slice() != sum {
            return Err(self.corrupt("checksum mismatch"));
        }
        borsh::from_slice(&body[MAGIC_V1.len()..]).map_err(|e| self.corrupt(e.to_string()))
    }

    /// Durably replaces the saved state: when this returns `Ok`, a crash
    /// at any later moment loads `state` (or a later one).
    pub fn save(&mut self, state: &SignerState) -> Result<(), SignerStoreError> {
        let seq = self.written.as_ref().map_or(1, |w| w.seq.wrapping_add(1));
        let record = encode_slot(seq, state);
        let in_place = match self.written.take() {
            Some(w) if record.len() <= w.slot && self.still_ours(&w.file) => Some(w),
            _ => None,
        };
        self.written = Some(match in_place {
            Some(w) => self.overwrite(w, seq, &record)?,
            None => self.rewrite(seq, &record)?,
        });
        Ok(())
    }

    /// Whether the path still names the file this store has open. If
    /// someone deleted or replaced it while the node runs, in-place writes
    /// would go to a file no restart reads: then the whole file is written
    /// anew, as the rename protocol always did.
    fn still_ours(&self, file: &File) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(&self.path), file.metadata()) {
            (Ok(named), Ok(open)) => named.dev() == open.dev() && named.ino() == open.ino(),
            _ => false,
        }
    }

    /// Both slots in place, each durable before the other is touched.
    fn overwrite(&self, w: Written, seq: u64, record: &[u8]) -> Result<Written, SignerStoreError> {
        for at in [0, w.slot] {
            let mut f = &w.file;
            f.seek(SeekFrom::Start(at as u64))
                .and_then(|_| f.write_all(record))
                .and_then(|_| f.sync_data())
                .map_err(|e| self.io(e))?;
        }
        Ok(Written { seq, ..w })
    }

    /// A whole new file (both slots) written beside the old one and renamed
    /// over it, so a crash leaves one or the other.
    fn rewrite(&self, seq: u64, record: &[u8]) -> Result<Written, SignerStoreError> {
        // Room for the state to grow (a polka fills in) without another
        // rewrite.
        let slot = (record.len() * 2)
            .max(SLOT_ALIGN)
            .next_multiple_of(SLOT_ALIGN);
        let slot = slot.min(MAX_FILE_BYTES as usize / 2);
        if record.len() > slot {
            return Err(SignerStoreError::TooLarge(record.len()));
        }
        let mut bytes = vec![0u8; 2 * slot];
        bytes[..record.len()].copy_from_slice(record);
        bytes[slot..slot + record.len()].copy_from_slice(record);

        let tmp = self.path.with_extension("tmp");
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| self.io(e))?;
        file.write_all(&bytes).map_err(|e| self.io(e))?;
        file.sync_all().map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        // The rename itself must be durable too.
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io(e))?;
        }
        // Still the open file: the rename moved its name, not its data.
        Ok(Written { file, slot, seq })
    }
}

/// One slot's record: header, state, checksum (no padding).
fn encode_slot(seq: u64, state: &SignerState) -> Vec<u8> {
    let body = palisade_types::encode(state);
    let mut out = Vec::with_capacity(HEADER + body.len() + CHECKSUM);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&seq.to_le_bytes());
    // A state anywhere near 4 GiB is refused by `rewrite` long before.
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&body);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// A slot's sequence number and state, or why it is not intact.
fn parse_slot(slot: &[u8]) -> Result<(u64, SignerState), String> {
    let header = slot.get(..HEADER).ok_or("slot too short")?;
    if &header[..4] != MAGIC {
        return Err("bad magic".into());
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&header[4..12]);
    let mut len = [0u8; 4];
    len.copy_from_slice(&header[12..16]);
    let len = u32::from_le_bytes(len) as usize;
    let end = HEADER
        .checked_add(len)
        .filter(|&e| e + CHECKSUM <= slot.len())
        .ok_or("length past the end of the slot")?;
    if Sha256::digest(&slot[..end]).as_slice() != &slot[end..end + CHECKSUM] {
        return Err("checksum mismatch".into());
    }
    let state = borsh::from_slice(&slot[HEADER..end]).map_err(|e| e.to_string())?;
    Ok((u64::from_le_bytes(seq), state))
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migration {
    /// No file at the old path.
    Nothing,
    /// The old file held the newer state: it is now at the new path.
    Moved,
    /// The new path already held a state at least as new: the old file was
    /// only removed.
    OldDiscarded,
}

/// Where a state stands in signing order: (height, round, highest step).
fn position(s: &SignerState) -> (Height, Round, Option<Step>) {
    (s.height, s.round, s.step)
}

/// Moves the signer state from `old` (where earlier versions kept it,
/// `data/signer_state`) to `new` (beside the validator key), never losing
/// the newer of the two: when both exist, the one further along in
/// (height, round, step) is kept. The old file is removed only once the
/// kept state is durable at `new`; a crash in between leaves both, and the
/// next start migrates again. A damaged file at either path is an error:
/// the node must not start without knowing what it signed.
pub fn migrate(old: &Path, new: &Path) -> Result<Migration, SignerStoreError> {
    if old == new {
        return Ok(Migration::Nothing);
    }
    match std::fs::symlink_metadata(old) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Migration::Nothing),
        Err(source) => {
            return Err(SignerStoreError::Io {
                path: old.to_path_buf(),
                source,
            })
        }
    }
    let old_state = SignerStore::new(old).load()?;
    let mut to = SignerStore::new(new);
    let new_state = to.load()?;
    let done = if position(&old_state) > position(&new_state) {
        if let Some(dir) = new.parent() {
            std::fs::create_dir_all(dir).map_err(|e| to.io(e))?;
        }
        // Written anew and renamed into place, file and directory synced.
        to.save(&old_state)?;
        Migration::Moved
    } else {
        Migration::OldDiscarded
    };
    let io = |source| SignerStoreError::Io {
        path: old.to_path_buf(),
        source,
    };
    std::fs::remove_file(old).map_err(io)?;
    if let Some(dir) = old.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    tracing::info!(from = %old.display(), to = %new.display(), outcome = ?done, "moved the signer state out of the data directory, beside the validator key");
    Ok(done)
}
