//! `0x`-hex text form shared by every fixed-size byte type (JSON, CLI, logs).

/// Why a hex string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("hex string must start with 0x")]
    MissingPrefix,
    #[error("invalid hex: {0}")]
    Invalid(String),
    #[error("expected {expected} bytes, got {actual}")]
    WrongLength { expected: usize, actual: usize },
}

/// Writes `bytes` as `0x`-hex. Built in a stack buffer: going through
/// `hex::encode`'s per-character iterator made formatting addresses a
/// visible share of executing a transfer (its receipt names both parties).
pub(crate) fn fmt_hex0x(bytes: &[u8], f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    const MAX: usize = 64;
    if bytes.len() > MAX {
        return write!(f, "0x{}", hex::encode(bytes));
    }
    let mut buf = [0u8; 2 + 2 * MAX];
    buf[0] = b'0';
    buf[1] = b'x';
    let end = 2 + 2 * bytes.len();
    hex::encode_to_slice(bytes, &mut buf[2..end]).map_err(|_| std::fmt::Error)?;
    f.write_str(std::str::from_utf8(&buf[..end]).map_err(|_| std::fmt::Error)?)
}

/// Parses `0x`-prefixed hex (either case) into bytes.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, HexError> {
    let body = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or(HexError::MissingPrefix)?;
    hex::decode(body).map_err(|e| HexError::Invalid(e.to_string()))
}

/// Parses `0x`-hex of exactly `N` bytes.
pub fn parse_hex_fixed<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let bytes = parse_hex(s)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| HexError::WrongLength {
        expected: N,
        actual: bytes.len(),
    })
}

/// Implements `FromStr`, `Serialize` and `Deserialize` as `0x`-hex for a
/// tuple struct around `[u8; N]`.
macro_rules! impl_hex_fixed {
    ($ty:ident, $n:expr) => {
        impl std::str::FromStr for $ty {
            type Err = $crate::hex_serde::HexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::hex_serde::parse_hex_fixed::<$n>(s).map($ty)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // Through `Display`: no intermediate String.
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use impl_hex_fixed;

/// Serde for amounts: JSON carries them as decimal strings (u128 does not fit
/// a JSON number in most clients); a plain number is accepted on input.
pub mod amount_str {
    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = u128;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an amount as a decimal string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<u128, E> {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(E::custom(format!(
                        "invalid amount {s:?}: expected decimal digits"
                    )));
                }
                s.parse()
                    .map_err(|_| E::custom(format!("amount {s} is out of range")))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<u128, E> {
                Ok(n.into())
            }
            fn visit_u128<E: de::Error>(self, n: u128) -> Result<u128, E> {
                Ok(n)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    struct H<'a>(&'a [u8]);

    impl std::fmt::Display for H<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            super::fmt_hex0x(self.0, f)
        }
    }

    #[test]
    fn display_is_prefixed_lowercase_hex() {
        for n in [0usize, 1, 32, 64, 65, 100] {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37) as u8).collect();
            assert_eq!(H(&bytes).to_string(), format!("0x{}", hex::encode(&bytes)));
        }
    }
}

/// Serde for byte strings of any length as `0x`-hex (EVM call data, return
/// data, log data).
pub mod bytes_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_hex(&s).map_err(serde::de::Error::custom)
    }
}
