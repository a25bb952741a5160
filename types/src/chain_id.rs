use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};

use crate::limits::MAX_CHAIN_ID_LEN;

/// Identifies one chain. 1 to 50 bytes of `[a-z0-9._-]`, starting with a
/// letter or digit. It is part of every signed message so a signature made
/// for one chain is never valid on another.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainIdError {
    #[error("chain id must be 1 to {MAX_CHAIN_ID_LEN} bytes, got {0}")]
    Length(usize),
    #[error("chain id may contain only a-z, 0-9, '.', '_' and '-', and must start with a letter or digit: {0:?}")]
    Charset(String),
}

impl ChainId {
    pub fn new(s: impl Into<String>) -> Result<ChainId, ChainIdError> {
        let s = s.into();
        if s.is_empty() || s.len() > MAX_CHAIN_ID_LEN {
            return Err(ChainIdError::Length(s.len()));
        }
        let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c);
        let first_ok = s
            .as_bytes()
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !first_ok || !s.bytes().all(ok_char) {
            return Err(ChainIdError::Charset(s));
        }
        Ok(ChainId(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ChainId {
    type Err = ChainIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChainId::new(s)
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.0)
    }
}

impl BorshSerialize for ChainId {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        self.0.serialize(writer)
    }
}

impl BorshDeserialize for ChainId {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        let len = u32::deserialize_reader(reader)? as usize;
        if len == 0 || len > MAX_CHAIN_ID_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                ChainIdError::Length(len),
            ));
        }
        let mut buf = vec![0u8; len];
        reader.read_exact(&mut buf)?;
        let s = String::from_utf8(buf)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chain id is not UTF-8"))?;
        ChainId::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl serde::Serialize for ChainId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ChainId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        ChainId::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(ChainId::new("palisade-devnet").is_ok());
        assert!(ChainId::new("a").is_ok());
        assert!(ChainId::new("9.chain_x").is_ok());
        assert_eq!(ChainId::new(""), Err(ChainIdError::Length(0)));
        assert!(ChainId::new("x".repeat(MAX_CHAIN_ID_LEN + 1)).is_err());
        assert!(ChainId::new("Upper").is_err());
        assert!(ChainId::new("-lead").is_err());
        assert!(ChainId::new("sp ace").is_err());
        assert!(ChainId::new("ünï").is_err());
    }

    #[test]
    fn borsh_rejects_invalid_chain_ids() {
        let bad = borsh::to_vec(&"Bad Chain".to_string()).unwrap();
        assert!(crate::codec::decode_with_limit::<ChainId>(&bad, "chain id", 64).is_err());
        let good = borsh::to_vec(&"good".to_string()).unwrap();
        assert_eq!(
            crate::codec::decode_with_limit::<ChainId>(&good, "chain id", 64)
                .unwrap()
                .as_str(),
            "good"
        );
    }
}
