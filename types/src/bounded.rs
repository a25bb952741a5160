use std::fmt;
use std::io::{self, Read};
use std::ops::Deref;

use borsh::{BorshDeserialize, BorshSerialize};

fn too_long(len: usize, max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("length {len} exceeds the limit of {max}"),
    )
}

/// A byte string of at most `N` bytes. Encoded like borsh `Vec<u8>` (u32
/// little-endian length, then the bytes); decoding refuses a length over `N`
/// before reading or allocating.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BoundedBytes<const N: usize>(Vec<u8>);

impl<const N: usize> BoundedBytes<N> {
    pub const MAX: usize = N;

    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, usize> {
        let bytes = bytes.into();
        if bytes.len() > N {
            return Err(bytes.len());
        }
        Ok(BoundedBytes(bytes))
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

impl<const N: usize> Deref for BoundedBytes<N> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> AsRef<[u8]> for BoundedBytes<N> {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for BoundedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(&self.0))
    }
}

impl<const N: usize> BorshSerialize for BoundedBytes<N> {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        self.0.serialize(writer)
    }
}

impl<const N: usize> BorshDeserialize for BoundedBytes<N> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        let len = u32::deserialize_reader(reader)? as usize;
        if len > N {
            return Err(too_long(len, N));
        }
        let mut buf = vec![0u8; len];
        reader.read_exact(&mut buf)?;
        Ok(BoundedBytes(buf))
    }
}

impl<const N: usize> serde::Serialize for BoundedBytes<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(&self.0)))
    }
}

impl<'de, const N: usize> serde::Deserialize<'de> for BoundedBytes<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        let bytes = crate::parse_hex(&s).map_err(serde::de::Error::custom)?;
        BoundedBytes::new(bytes).map_err(|len| {
            serde::de::Error::custom(format!("{len} bytes exceeds the limit of {N}"))
        })
    }
}

/// UTF-8 text of at most `N` bytes. Encoded like borsh `String` (u32
/// little-endian length, then the bytes); decoding refuses a length over
/// `N` before reading, and bytes that are not UTF-8.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BoundedString<const N: usize>(String);

impl<const N: usize> BoundedString<N> {
    pub const MAX: usize = N;

    pub fn new(text: impl Into<String>) -> Result<Self, usize> {
        let text = text.into();
        if text.len() > N {
            return Err(text.len());
        }
        Ok(BoundedString(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> Deref for BoundedString<N> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for BoundedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<const N: usize> fmt::Display for BoundedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const N: usize> BorshSerialize for BoundedString<N> {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        self.0.serialize(writer)
    }
}

impl<const N: usize> BorshDeserialize for BoundedString<N> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        let bytes = BoundedBytes::<N>::deserialize_reader(reader)?;
        String::from_utf8(bytes.into_inner())
            .map(BoundedString)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "text is not UTF-8"))
    }
}

impl<const N: usize> serde::Serialize for BoundedString<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de, const N: usize> serde::Deserialize<'de> for BoundedString<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        BoundedString::new(s).map_err(|len| {
            serde::de::Error::custom(format!("{len} bytes of text exceeds the limit of {N}"))
        })
    }
}

/// A list of at most `N` items, encoded like borsh `Vec<T>`; decoding refuses
/// a length over `N` before reading any item.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BoundedVec<T, const N: usize>(Vec<T>);

impl<T, const N: usize> Default for BoundedVec<T, N> {
    fn default() -> Self {
        BoundedVec(Vec::new())
    }
}

impl<T, const N: usize> BoundedVec<T, N> {
    pub const MAX: usize = N;

    pub fn new(items: Vec<T>) -> Result<Self, usize> {
        if items.len() > N {
            return Err(items.len());
        }
        Ok(BoundedVec(items))
    }

    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const N: usize> Deref for BoundedVec<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for BoundedVec<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: BorshSerialize, const N: usize> BorshSerialize for BoundedVec<T, N> {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        self.0.serialize(writer)
    }
}

impl<T: BorshDeserialize, const N: usize> BorshDeserialize for BoundedVec<T, N> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        let len = u32::deserialize_reader(reader)? as usize;
        if len > N {
            return Err(too_long(len, N));
        }
        // Capacity is capped: the length prefix is attacker-controlled and each
        // item may still fail to decode, so grow as items actually arrive.
        let mut items = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            items.push(T::deserialize_reader(reader)?);
        }
        Ok(BoundedVec(items))
    }
}

impl<T: serde::Serialize, const N: usize> serde::Serialize for BoundedVec<T, N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: serde::Deserialize<'de>, const N: usize> serde::Deserialize<'de> for BoundedVec<T, N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = <Vec<T> as serde::Deserialize>::deserialize(d)?;
        BoundedVec::new(items).map_err(|len| {
            serde::de::Error::custom(format!("{len} items exceeds the limit of {N}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_over_limit_are_refused_before_reading() {
        // Length prefix claims 5 bytes; limit is 4; no body is present at all,
        // so the error must come from the bound, not from running out of input.
        let enc = 5u32.to_le_bytes();
        let err = crate::codec::decode_with_limit::<BoundedBytes<4>>(&enc, "b", 64).unwrap_err();
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
    }

    #[test]
    fn text_over_limit_or_not_utf8_is_refused() {
        let enc = borsh::to_vec(&"abc".to_string()).unwrap();
        assert!(crate::codec::decode_with_limit::<BoundedString<2>>(&enc, "t", 64).is_err());
        assert_eq!(
            crate::codec::decode_with_limit::<BoundedString<3>>(&enc, "t", 64)
                .unwrap()
                .as_str(),
            "abc"
        );
        let bad = borsh::to_vec(&vec![0xffu8, 0xfe]).unwrap();
        let err = crate::codec::decode_with_limit::<BoundedString<8>>(&bad, "t", 64).unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }

    #[test]
    fn vec_over_limit_is_refused() {
        let enc = borsh::to_vec(&vec![1u8, 2, 3]).unwrap();
        assert!(crate::codec::decode_with_limit::<BoundedVec<u8, 2>>(&enc, "v", 64).is_err());
        assert_eq!(
            &*crate::codec::decode_with_limit::<BoundedVec<u8, 3>>(&enc, "v", 64).unwrap(),
            &[1, 2, 3]
        );
    }

    #[test]
    fn huge_length_prefix_does_not_allocate() {
        let enc = u32::MAX.to_le_bytes();
        assert!(
            crate::codec::decode_with_limit::<BoundedVec<u64, { usize::MAX }>>(&enc, "v", 64)
                .is_err()
        );
    }
}
