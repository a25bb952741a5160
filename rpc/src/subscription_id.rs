//! Subscription ids as Ethereum nodes give them: `0x` and 32 hex digits
//! (128 random bits). Clients read them as strings; Go's ethclient, for
//! one, cannot read a number.

use jsonrpsee::core::traits::IdProvider;
use jsonrpsee::types::SubscriptionId;
use rand::RngCore;

#[derive(Debug, Clone, Copy, Default)]
pub struct HexIdProvider;

impl IdProvider for HexIdProvider {
    fn next_id(&self) -> SubscriptionId<'static> {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        SubscriptionId::Str(format!("0x{}", hex::encode(bytes)).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_strings_and_differ() {
        let p = HexIdProvider;
        let (a, b) = (p.next_id(), p.next_id());
        assert_ne!(a, b);
        let SubscriptionId::Str(s) = a else {
            panic!("not a string: {a:?}")
        };
        assert_eq!(s.len(), 34);
        assert!(s.starts_with("0x"));
        assert!(hex::decode(&s[2..]).is_ok());
    }
}
