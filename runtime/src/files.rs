//! Shared files on chain: each published file's record and each account's
//! quota use. The bytes live with the nodes (`palisade-files`); the chain
//! only agrees on who published what, who may read it, and when it was
//! withdrawn.

use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::file::{MAX_FILE_BYTES, MAX_MIN_REPLICAS};
use palisade_types::{Address, FileName, FileReaders, Hash, Height, MediaType, Role};
use serde::{Deserialize, Serialize};

use crate::receipt::Event;
use crate::state::{Account, Overlay};
use crate::{ChainParams, StoreError, TxError};

/// State keys of files.
pub mod keys {
    use palisade_types::{Address, Hash};

    /// A file's record: this prefix, then its 32-byte root.
    pub fn file(root: &Hash) -> Vec<u8> {
        [b"file/".as_slice(), root.as_bytes()].concat()
    }

    /// Bytes of files an account has on record: this prefix, then the
    /// 32-byte address.
    pub fn file_use(a: &Address) -> Vec<u8> {
        [b"fileuse/".as_slice(), a.as_bytes()].concat()
    }
}

/// What the chain records about a published file.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct FileRecord {
    pub root: Hash,
    pub size: u64,
    pub name: FileName,
    pub media_type: MediaType,
    pub readers: FileReaders,
    pub min_replicas: u16,
    pub publisher: Address,
    /// The height of the block that published it.
    pub published: Height,
    /// The height of the block that withdrew it, if one did.
    pub unpublished: Option<Height>,
}

impl FileRecord {
    /// Whether `reader` (whose account, if it has one, is `account`) may
    /// fetch the file: never once it is withdrawn; always its publisher;
    /// otherwise as its readers say.
    pub fn may_read(&self, reader: &Address, account: Option<&Account>) -> bool {
        if self.unpublished.is_some() {
            return false;
        }
        if *reader == self.publisher {
            return true;
        }
        let roles = account.map(Account::role_list).unwrap_or_default();
        self.readers.admits(reader, &roles)
    }
}

/// The file recorded under `root`, if any.
pub fn record(st: &Overlay<'_>, root: &Hash) -> Result<Option<FileRecord>, StoreError> {
    st.get(&keys::file(root))?
        .map(|b| {
            borsh::from_slice(&b).map_err(|e| StoreError::Corrupt(format!("file record: {e}")))
        })
        .transpose()
}

fn usage(st: &Overlay<'_>, a: &Address) -> Result<u64, StoreError> {
    match st.get(&keys::file_use(a))? {
        None => Ok(0),
        Some(b) => borsh::from_slice(&b).map_err(|e| StoreError::Corrupt(format!("file use: {e}"))),
    }
}

fn set_usage(st: &mut Overlay<'_>, a: &Address, bytes: u64) {
    if bytes == 0 {
        st.delete(keys::file_use(a));
    } else {
        st.put(keys::file_use(a), palisade_types::encode(&bytes));
    }
}

/// What [`publish`] records.
pub(crate) struct Publish<'a> {
    pub root: &'a Hash,
    pub size: u64,
    pub name: &'a FileName,
    pub media_type: &'a MediaType,
    pub readers: &'a FileReaders,
    pub min_replicas: u16,
}

/// Records a file for `from` (who holds `member`, checked by the caller)
/// at `height`, within `from`'s quota.
pub(crate) fn publish(
    st: &mut Overlay<'_>,
    from: &Address,
    height: Height,
    p: Publish<'_>,
    params: &ChainParams,
) -> Result<Vec<Event>, crate::applied::Admit> {
    if p.size > MAX_FILE_BYTES {
        return Err(TxError::FileInvalid("a file is at most 1 TiB").into());
    }
    if p.name.trim().is_empty() || p.name.chars().any(char::is_control) {
        return Err(
            TxError::FileInvalid("a file name is not empty and has no control characters").into(),
        );
    }
    if p.media_type
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(
            TxError::FileInvalid("a media type has no spaces or control characters").into(),
        );
    }
    if p.min_replicas > MAX_MIN_REPLICAS {
        return Err(TxError::FileInvalid("min_replicas is at most 64").into());
    }
    // One live record per root. A withdrawn root may be published again
    // (by anyone): a member who took a root it did not create can be
    // undone by an admin's unpublish, and the content is not lost for good.
    if record(st, p.root)?.is_some_and(|r| r.unpublished.is_none()) {
        return Err(TxError::FileExists.into());
    }
    let used = usage(st, from)?;
    let total = used.checked_add(p.size).ok_or(TxError::Overflow)?;
    if total > params.file_quota_bytes {
        return Err(TxError::FileQuotaExceeded {
            used,
            size: p.size,
            quota: params.file_quota_bytes,
        }
        .into());
    }
    set_usage(st, from, total);
    let rec = FileRecord {
        root: *p.root,
        size: p.size,
        name: p.name.clone(),
        media_type: p.media_type.clone(),
        readers: p.readers.clone(),
        min_replicas: p.min_replicas,
        publisher: *from,
        published: height,
        unpublished: None,
    };
    st.put(keys::file(p.root), palisade_types::encode(&rec));
    Ok(vec![Event::new(
        "file_publish",
        &[
            ("root", p.root.to_string()),
            ("publisher", from.to_string()),
            ("size", p.size.to_string()),
        ],
    )])
}

/// Withdraws the file `root` for `from` (its publisher, or an admin):
/// the record stays, marked at `height`; its size leaves the publisher's
/// quota.
pub(crate) fn unpublish(
    st: &mut Overlay<'_>,
    from: &Address,
    signer: &Account,
    height: Height,
    root: &Hash,
) -> Result<Vec<Event>, crate::applied::Admit> {
    let mut rec = record(st, root)?.ok_or(TxError::FileNotFound)?;
    if rec.unpublished.is_some() {
        return Err(TxError::FileWithdrawn.into());
    }
    if rec.publisher != *from && !signer.has(Role::Admin) {
        return Err(TxError::NotFilePublisher.into());
    }
    let used = usage(st, &rec.publisher)?;
    set_usage(st, &rec.publisher, used.saturating_sub(rec.size));
    rec.unpublished = Some(height);
    st.put(keys::file(root), palisade_types::encode(&rec));
    Ok(vec![Event::new(
        "file_unpublish",
        &[("root", root.to_string()), ("by", from.to_string())],
    )])
}

/// Bytes of files `a` has on record (for queries).
pub fn quota_used(st: &Overlay<'_>, a: &Address) -> Result<u64, StoreError> {
    usage(st, a)
}
