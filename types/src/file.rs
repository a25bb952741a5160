//! What the chain records about a shared file: who may read it, and the
//! bounds of its record. The bytes themselves never go on chain (see
//! `docs/files.md`).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Address, BoundedString, BoundedVec, Role};

/// Largest file that can be published: 1 TiB (a million 1 MiB pieces).
pub const MAX_FILE_BYTES: u64 = 1 << 40;
/// Longest file name, in bytes of UTF-8.
pub const MAX_FILE_NAME_LEN: usize = 255;
/// Longest media type, in bytes.
pub const MAX_MEDIA_TYPE_LEN: usize = 127;
/// Most accounts a file's reader list may name.
pub const MAX_FILE_READER_ACCOUNTS: usize = 1_000;
/// Most complete copies a publisher may ask the network to keep.
pub const MAX_MIN_REPLICAS: u16 = 64;

/// A file's name as its publisher gave it (shown, never used as a path).
pub type FileName = BoundedString<MAX_FILE_NAME_LEN>;
/// A file's media type, e.g. `application/pdf`.
pub type MediaType = BoundedString<MAX_MEDIA_TYPE_LEN>;

/// Who, besides its publisher, may fetch a file. The borsh tag is the
/// variant index.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FileReaders {
    /// Every account (who can reach a node is still the network's
    /// allowlist's business).
    Everyone,
    /// Accounts holding any of these roles at the serving node's latest
    /// committed height.
    Roles(BoundedVec<Role, 5>),
    /// These accounts.
    Accounts(BoundedVec<Address, MAX_FILE_READER_ACCOUNTS>),
}

impl FileReaders {
    /// Whether `reader`, holding `roles`, is among these readers.
    pub fn admits(&self, reader: &Address, roles: &[Role]) -> bool {
        match self {
            FileReaders::Everyone => true,
            FileReaders::Roles(want) => want.iter().any(|r| roles.contains(r)),
            FileReaders::Accounts(list) => list.contains(reader),
        }
    }
}
