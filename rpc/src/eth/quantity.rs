//! Ethereum's JSON encodings: quantities are `0x` and hex digits without
//! leading zeros (`0x0` for zero), data is `0x` and an even number of hex
//! digits.

use jsonrpsee::types::ErrorObjectOwned;

use crate::errors::invalid_params;

pub fn q(n: u128) -> String {
    format!("0x{n:x}")
}

pub fn data(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// A quantity: `0x` and 1 to 32 hex digits, no leading zero but in `0x0`.
/// Values above `u128` (balances and prices never are) are refused.
pub fn parse_q(s: &str, what: &str) -> Result<u128, ErrorObjectOwned> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| invalid_params(format!("{what}: {s:?} is not a 0x-prefixed quantity")))?;
    if digits.is_empty() || digits.len() > 32 || (digits.len() > 1 && digits.starts_with('0')) {
        return Err(invalid_params(format!(
            "{what}: {s:?} is not a quantity (hex digits without leading zeros, at most 128 bits)"
        )));
    }
    u128::from_str_radix(digits, 16)
        .map_err(|_| invalid_params(format!("{what}: {s:?} is not hex")))
}

pub fn parse_q64(s: &str, what: &str) -> Result<u64, ErrorObjectOwned> {
    u64::try_from(parse_q(s, what)?)
        .map_err(|_| invalid_params(format!("{what}: {s} is too large")))
}

/// Data: `0x` and an even number of hex digits.
pub fn parse_data(s: &str, what: &str) -> Result<Vec<u8>, ErrorObjectOwned> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| invalid_params(format!("{what}: {s:?} is not 0x-prefixed hex")))?;
    hex::decode(digits).map_err(|e| invalid_params(format!("{what}: {e}")))
}

/// A 32-byte word given as data or as a quantity (`eth_getStorageAt`'s
/// slot is either, in practice).
pub fn parse_word(s: &str, what: &str) -> Result<[u8; 32], ErrorObjectOwned> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| invalid_params(format!("{what}: {s:?} is not 0x-prefixed hex")))?;
    if digits.is_empty() || digits.len() > 64 {
        return Err(invalid_params(format!(
            "{what}: {s:?} is not a 32-byte word"
        )));
    }
    let padded = format!("{digits:0>64}");
    let mut out = [0u8; 32];
    hex::decode_to_slice(&padded, &mut out).map_err(|e| invalid_params(format!("{what}: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_strict() {
        assert_eq!(q(0), "0x0");
        assert_eq!(q(255), "0xff");
        assert_eq!(parse_q("0x0", "x").unwrap(), 0);
        assert_eq!(parse_q("0x1f", "x").unwrap(), 31);
        for bad in [
            "",
            "0x",
            "1f",
            "0x01",
            "0xzz",
            "0x100000000000000000000000000000000",
        ] {
            assert!(parse_q(bad, "x").is_err(), "{bad}");
        }
        assert_eq!(parse_word("0x1", "s").unwrap()[31], 1);
        assert!(parse_word(&format!("0x{}", "0".repeat(65)), "s").is_err());
        assert_eq!(parse_data("0x", "d").unwrap(), Vec::<u8>::new());
        assert!(parse_data("0xabc", "d").is_err());
    }
}
