//! Integration tests of the node: storage, signer state, mempool, app,
//! consensus driver and block sync (the p2p layer's tests are the network
//! crate's).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod background;
mod config_layers;
mod driver;
mod genesis_cmd;
mod health;
mod home;
mod ledger;
mod mempool;
mod signer_store;
mod spec_deferred;
mod sync;

/// A header of `chain` at height `h` with every hash zero, time `h` and a
/// zero proposer key: what a test overrides is what it is about.
fn header_at(chain: palisade_types::ChainId, h: u64) -> palisade_types::BlockHeader {
    use palisade_types::{Hash, Height, PublicKey, Timestamp};
    palisade_types::BlockHeader {
        chain_id: chain,
        height: Height(h),
        time: Timestamp(h),
        last_block_hash: Hash::ZERO,
        tx_root: Hash::ZERO,
        state_root: Hash::ZERO,
        receipts_root: Hash::ZERO,
        validators_hash: Hash::ZERO,
        next_validators_hash: Hash::ZERO,
        proposer: PublicKey([0; 32]),
        last_commit_hash: Hash::ZERO,
    }
}

/// The certificate of `keys` precommitting `block` of `chain` in round 0.
fn precommitted(
    chain: &palisade_types::ChainId,
    keys: &[palisade_types::Keypair],
    block: &palisade_types::Block,
) -> palisade_types::CommitCertificate {
    use palisade_types::{CommitCertificate, Round};
    CommitCertificate::signed(chain, block.height(), Round(0), block.hash(), keys).unwrap()
}
