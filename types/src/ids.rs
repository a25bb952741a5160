use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// An arithmetic operation on an id would have left its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} overflow")]
pub struct ArithmeticError {
    pub what: &'static str,
}

/// Block height. Height 0 is the genesis state; the first block is height 1.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Height(pub u64);

impl Height {
    pub const GENESIS: Height = Height(0);

    pub fn next(self) -> Result<Height, ArithmeticError> {
        self.0
            .checked_add(1)
            .map(Height)
            .ok_or(ArithmeticError { what: "height" })
    }

    /// The previous height, or `None` at genesis.
    pub fn prev(self) -> Option<Height> {
        self.0.checked_sub(1).map(Height)
    }

    pub fn checked_add(self, n: u64) -> Result<Height, ArithmeticError> {
        self.0
            .checked_add(n)
            .map(Height)
            .ok_or(ArithmeticError { what: "height" })
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}", self.0)
    }
}

/// Consensus round within a height, starting at 0.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Round(pub u32);

impl Round {
    pub const ZERO: Round = Round(0);

    pub fn next(self) -> Result<Round, ArithmeticError> {
        self.0
            .checked_add(1)
            .map(Round)
            .ok_or(ArithmeticError { what: "round" })
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// Milliseconds since the Unix epoch (UTC).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn as_millis(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn height_arithmetic_is_checked() {
        assert_eq!(Height(1).next(), Ok(Height(2)));
        assert!(Height(u64::MAX).next().is_err());
        assert_eq!(Height(0).prev(), None);
        assert_eq!(Height(5).prev(), Some(Height(4)));
        assert!(Height(u64::MAX - 1).checked_add(2).is_err());
    }

    #[test]
    fn round_arithmetic_is_checked() {
        assert_eq!(Round(0).next(), Ok(Round(1)));
        assert!(Round(u32::MAX).next().is_err());
    }
}
