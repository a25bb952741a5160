//! Any bytes: decoding a block, header, vote or commit never panics, and an
//! accepted value re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_types::{
    decode, encode, Block, BlockHeader, CommitCertificate, SignedProposal, SignedVote,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = decode::<Block>(data) {
        assert_eq!(encode(&b), data);
        let _ = b.validate_basic();
    }
    if let Ok(h) = decode::<BlockHeader>(data) {
        assert_eq!(encode(&h), data);
    }
    if let Ok(v) = decode::<SignedVote>(data) {
        assert_eq!(encode(&v), data);
    }
    if let Ok(p) = decode::<SignedProposal>(data) {
        assert_eq!(encode(&p), data);
    }
    if let Ok(c) = decode::<CommitCertificate>(data) {
        assert_eq!(encode(&c), data);
    }
});
