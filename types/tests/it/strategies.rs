//! proptest strategies for every wire type.

use palisade_types::{
    Action, Address, Block, BlockHeader, BoundedBytes, BoundedVec, ChainId, CommitCertificate,
    CommitSig, Hash, Height, Keypair, Param, PublicKey, Role, Round, Signature, SignedTransaction,
    SignedVote, Timestamp, Transaction, Vote, VoteType,
};
use proptest::collection::{btree_set, vec};
use proptest::prelude::*;

pub fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

pub fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 32]>().prop_map(Address)
}

pub fn public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey)
}

pub fn signature() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Signature(s)
    })
}

pub fn chain_id() -> impl Strategy<Value = ChainId> {
    "[a-z0-9][a-z0-9._-]{0,49}".prop_map(|s| ChainId::new(s).unwrap())
}

fn bytes<const N: usize>(max: usize) -> impl Strategy<Value = BoundedBytes<N>> {
    vec(any::<u8>(), 0..=max.min(N)).prop_map(|v| BoundedBytes::new(v).unwrap())
}

pub fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

pub fn param() -> impl Strategy<Value = Param> {
    prop_oneof![
        any::<u32>().prop_map(Param::MaxBlockTxs),
        any::<u32>().prop_map(Param::MaxBlockBytes),
        any::<u32>().prop_map(Param::MaxTxBytes),
        any::<u32>().prop_map(Param::MaxValueBytes),
        any::<u64>().prop_map(Param::ValidatorUpdateDelay),
    ]
}

pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (address(), any::<u128>()).prop_map(|(to, amount)| Action::Transfer { to, amount }),
        (address(), any::<u128>()).prop_map(|(to, amount)| Action::Mint { to, amount }),
        any::<u128>().prop_map(|amount| Action::Burn { amount }),
        (bytes(64), bytes(64), bytes(512)).prop_map(|(namespace, key, value)| Action::Put {
            namespace,
            key,
            value
        }),
        (bytes(64), bytes(64)).prop_map(|(namespace, key)| Action::Delete { namespace, key }),
        (address(), role()).prop_map(|(account, role)| Action::GrantRole { account, role }),
        (address(), role()).prop_map(|(account, role)| Action::RevokeRole { account, role }),
        (public_key(), public_key(), any::<u64>()).prop_map(|(consensus_key, node_key, power)| {
            Action::AddValidator {
                consensus_key,
                node_key,
                power,
            }
        }),
        public_key().prop_map(|consensus_key| Action::RemoveValidator { consensus_key }),
        (public_key(), any::<u64>()).prop_map(|(consensus_key, power)| {
            Action::SetValidatorPower {
                consensus_key,
                power,
            }
        }),
        param().prop_map(|param| Action::SetParam { param }),
    ]
}

/// A correctly signed transaction and the key that signed it.
pub fn signed_tx() -> impl Strategy<Value = (SignedTransaction, Keypair)> {
    (any::<[u8; 32]>(), chain_id(), any::<u64>(), action()).prop_map(
        |(seed, chain_id, nonce, action)| {
            let key = Keypair::from_seed(seed);
            let tx = Transaction {
                chain_id,
                nonce,
                signer: key.address(),
                action,
            };
            (tx.sign(&key), key)
        },
    )
}

pub fn header() -> impl Strategy<Value = BlockHeader> {
    (
        chain_id(),
        any::<u64>(),
        any::<u64>(),
        vec(hash(), 8),
        public_key(),
    )
        .prop_map(|(chain_id, height, time, h, proposer)| BlockHeader {
            chain_id,
            height: Height(height),
            time: Timestamp(time),
            last_block_hash: h[0],
            tx_root: h[1],
            state_root: h[2],
            receipts_root: h[3],
            validators_hash: h[4],
            next_validators_hash: h[5],
            proposer,
            last_commit_hash: h[6],
        })
}

pub fn vote() -> impl Strategy<Value = SignedVote> {
    (
        any::<bool>(),
        any::<u64>(),
        any::<u32>(),
        proptest::option::of(hash()),
        public_key(),
        signature(),
    )
        .prop_map(|(pre, h, r, block_hash, validator, signature)| SignedVote {
            vote: Vote {
                vote_type: if pre {
                    VoteType::Prevote
                } else {
                    VoteType::Precommit
                },
                height: Height(h),
                round: Round(r),
                block_hash,
                validator,
            },
            signature,
        })
}

pub fn commit() -> impl Strategy<Value = CommitCertificate> {
    (
        any::<u64>(),
        any::<u32>(),
        hash(),
        btree_set(any::<[u8; 32]>(), 1..8),
        signature(),
    )
        .prop_map(|(h, r, block_hash, keys, sig)| {
            let sigs = keys
                .into_iter()
                .map(|k| CommitSig {
                    validator: PublicKey(k),
                    signature: sig,
                })
                .collect();
            CommitCertificate::new(Height(h), Round(r), block_hash, sigs).unwrap()
        })
}

pub fn block() -> impl Strategy<Value = Block> {
    (
        header(),
        vec(signed_tx().prop_map(|(t, _)| t), 0..4),
        proptest::option::of(commit()),
    )
        .prop_map(|(header, txs, last_commit)| Block {
            eth_txs: Default::default(),
            header,
            txs: BoundedVec::new(txs).unwrap(),
            last_commit,
        })
}
