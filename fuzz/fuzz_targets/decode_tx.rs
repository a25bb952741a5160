//! Any bytes: decoding a signed transaction never panics, and whatever it
//! accepts re-encodes to the same bytes (one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_types::{decode, encode, SignedTransaction};

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = decode::<SignedTransaction>(data) {
        assert_eq!(encode(&tx), data);
        let _ = tx.verify();
        let _ = tx.hash();
    }
});
