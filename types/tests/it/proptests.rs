//! Round trips, canonical re-encoding and tamper rejection.

use palisade_types::{
    decode, encode, Block, BlockHeader, ChainId, CommitCertificate, Keypair, SignedTransaction,
    SignedVote, Wire,
};
use proptest::prelude::*;

use crate::strategies;

/// `decode(encode(x)) == x`, and `x` followed by any extra byte is refused.
fn round_trip<T: Wire + PartialEq + std::fmt::Debug>(value: &T) -> Result<(), TestCaseError> {
    let bytes = encode(value);
    let back: T = decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, value);
    let mut longer = bytes.clone();
    longer.push(0);
    prop_assert!(decode::<T>(&longer).is_err(), "trailing byte accepted");
    Ok(())
}

/// Whatever bytes a decoder accepts must re-encode to exactly those bytes:
/// no two encodings of one value.
fn canonical<T: Wire>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(v) = decode::<T>(bytes) {
        prop_assert_eq!(encode(&v), bytes.to_vec());
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Truncate { len: usize },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
    ]
}

fn apply(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    let n = bytes.len();
    match *m {
        Mutation::Flip { at, bit } => bytes[at % n] ^= 1 << bit,
        Mutation::Truncate { len } => bytes.truncate(len % n),
        Mutation::Insert { at, byte } => bytes.insert(at % (n + 1), byte),
        Mutation::Remove { at } => {
            bytes.remove(at % n);
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn signed_tx_round_trips((tx, _) in strategies::signed_tx()) {
        round_trip(&tx)?;
        prop_assert!(tx.verify().is_ok());
    }

    #[test]
    fn header_round_trips(h in strategies::header()) {
        round_trip(&h)?;
    }

    #[test]
    fn block_round_trips(b in strategies::block()) {
        round_trip(&b)?;
        prop_assert_eq!(b.hash(), b.header.hash());
    }

    /// A block's encoding is exactly its transactions plus what
    /// `room_for_txs` leaves out of the bound for the rest.
    #[test]
    fn room_for_txs_is_the_bound_less_everything_else(b in strategies::block()) {
        let txs: usize = b.txs.iter().map(|t| t.encoded_len()).sum();
        let room = Block::room_for_txs(&b.header, b.last_commit.as_ref());
        prop_assert_eq!(
            palisade_types::encoded_len(&b),
            palisade_types::limits::MAX_BLOCK_BYTES - room + txs
        );
    }

    #[test]
    fn vote_round_trips(v in strategies::vote()) {
        round_trip(&v)?;
    }

    #[test]
    fn commit_round_trips(c in strategies::commit()) {
        round_trip(&c)?;
    }

    #[test]
    fn mutated_tx_encodings_are_canonical_or_refused(
        (tx, _) in strategies::signed_tx(),
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let bytes = muts.iter().fold(encode(&tx), apply);
        canonical::<SignedTransaction>(&bytes)?;
    }

    #[test]
    fn mutated_block_encodings_are_canonical_or_refused(
        b in strategies::block(),
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let bytes = muts.iter().fold(encode(&b), apply);
        canonical::<Block>(&bytes)?;
        canonical::<BlockHeader>(&bytes)?;
    }

    #[test]
    fn mutated_vote_and_commit_encodings_are_canonical_or_refused(
        v in strategies::vote(),
        c in strategies::commit(),
        m in mutation(),
    ) {
        canonical::<SignedVote>(&apply(encode(&v), &m))?;
        canonical::<CommitCertificate>(&apply(encode(&c), &m))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        canonical::<SignedTransaction>(&bytes)?;
        canonical::<Block>(&bytes)?;
        canonical::<BlockHeader>(&bytes)?;
        canonical::<SignedVote>(&bytes)?;
        canonical::<CommitCertificate>(&bytes)?;
    }

    #[test]
    fn tampered_transactions_are_rejected(
        (tx, _) in strategies::signed_tx(),
        other_chain in strategies::chain_id(),
        nonce_delta in 1u64..,
        sig_bit in 0usize..512,
        other_seed in any::<[u8; 32]>(),
    ) {
        prop_assert!(tx.verify().is_ok());

        if other_chain != tx.tx.chain_id {
            let mut t = tx.clone();
            t.tx.chain_id = other_chain;
            prop_assert!(t.verify().is_err(), "chain id swap accepted");
        }

        let mut t = tx.clone();
        t.tx.nonce = t.tx.nonce.wrapping_add(nonce_delta);
        prop_assert!(t.verify().is_err(), "nonce change accepted");

        let mut t = tx.clone();
        t.signature.0[sig_bit / 8] ^= 1 << (sig_bit % 8);
        prop_assert!(t.verify().is_err(), "flipped signature bit accepted");

        let other = Keypair::from_seed(other_seed);
        if other.address() != tx.tx.signer {
            let mut t = tx.clone();
            t.tx.signer = other.address();
            prop_assert!(t.verify().is_err(), "signer swap accepted");
            // Re-signing by someone else while claiming the original signer fails too.
            let forged = SignedTransaction { tx: tx.tx.clone(), signature: other.sign(&tx.tx.signing_bytes()) };
            prop_assert!(forged.verify().is_err(), "foreign signature accepted");
        }
    }

    #[test]
    fn vote_signature_does_not_transfer_across_chains(
        v in strategies::vote(),
        seed in any::<[u8; 32]>(),
        a in strategies::chain_id(),
        b in strategies::chain_id(),
    ) {
        let key = Keypair::from_seed(seed);
        let mut vote = v.vote;
        vote.validator = key.public_key();
        let signed = vote.sign(&a, &key);
        prop_assert!(signed.verify(&a).is_ok());
        if a != b {
            prop_assert!(signed.verify(&b).is_err());
        }
        prop_assert!(ChainId::new(a.as_str()).is_ok());
    }
}
