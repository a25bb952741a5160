//! Ethereum's 2048-bit logs bloom (`logsBloom` of blocks and receipts): the
//! node keeps one per block that has logs, so `eth_getLogs` reads only the
//! blocks that may match.

use crate::receipt::{EvmLog, Receipt};

/// Bytes in a logs bloom.
pub const BLOOM_BYTES: usize = 256;

/// A logs bloom: each log's address and topics set three bits each.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LogsBloom(pub [u8; BLOOM_BYTES]);

impl std::fmt::Debug for LogsBloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogsBloom({})", hex::encode(self.0))
    }
}

impl Default for LogsBloom {
    fn default() -> Self {
        LogsBloom([0; BLOOM_BYTES])
    }
}

/// The three (byte, mask) positions `item` sets: bits from the first three
/// 16-bit pairs of its keccak256, numbered from the last byte.
fn positions(item: &[u8]) -> [(usize, u8); 3] {
    let h = super::keccak256(item);
    [0, 2, 4].map(|i| {
        let bit = (usize::from(h[i]) << 8 | usize::from(h[i + 1])) & 2047;
        (BLOOM_BYTES - 1 - bit / 8, 1u8 << (bit % 8))
    })
}

impl LogsBloom {
    /// A bloom that matches everything (for blocks no bloom was kept for).
    pub const FULL: LogsBloom = LogsBloom([0xff; BLOOM_BYTES]);

    pub fn accrue(&mut self, item: &[u8]) {
        for (byte, mask) in positions(item) {
            self.0[byte] |= mask;
        }
    }

    pub fn accrue_log(&mut self, log: &EvmLog) {
        self.accrue(log.address.as_bytes());
        for t in &log.topics {
            self.accrue(&t.0);
        }
    }

    /// The bloom of every log in `receipts`.
    pub fn of_receipts<'a>(receipts: impl IntoIterator<Item = &'a Receipt>) -> LogsBloom {
        let mut bloom = LogsBloom::default();
        for log in receipts
            .into_iter()
            .flat_map(|r| r.evm.iter().flat_map(|e| &e.logs))
        {
            bloom.accrue_log(log);
        }
        bloom
    }

    /// False only if no log in the bloom has `item` as address or topic.
    pub fn may_contain(&self, item: &[u8]) -> bool {
        positions(item)
            .iter()
            .all(|(byte, mask)| self.0[*byte] & mask != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_types::{EvmAddress, Hash};

    #[test]
    fn a_bloom_matches_what_it_holds_and_not_much_else() {
        let log = EvmLog {
            address: EvmAddress([7; 20]),
            topics: vec![Hash([1; 32]), Hash([2; 32])],
            data: vec![1, 2, 3],
        };
        let mut bloom = LogsBloom::default();
        assert!(bloom.is_empty());
        bloom.accrue_log(&log);
        assert!(bloom.may_contain(&[7; 20]));
        assert!(bloom.may_contain(&[1; 32]));
        assert!(bloom.may_contain(&[2; 32]));
        // At most 9 bits are set, so most other items miss.
        let misses = (0u8..=255)
            .filter(|i| !bloom.may_contain(&[*i; 32]))
            .count();
        assert!(misses > 240, "{misses}");
        assert!(LogsBloom::FULL.may_contain(&[9; 32]));
    }

    /// Ethereum's vector: the bloom of the address
    /// 0x0000000000000000000000000000000000000000 sets the bits of
    /// keccak256(20 zero bytes) = 0x5380c7b7...
    #[test]
    fn bits_are_numbered_from_the_last_byte_as_ethereum_does() {
        let mut bloom = LogsBloom::default();
        bloom.accrue(&[0u8; 20]);
        let h = crate::evm::keccak256(&[0u8; 20]);
        assert_eq!(h[..2], [0x53, 0x80]);
        // 0x5380 & 2047 = 0x380 = 896: byte 255 - 112 = 143, bit 0.
        assert_eq!(bloom.0[143] & 1, 1);
        assert_eq!(bloom.0.iter().map(|b| b.count_ones()).sum::<u32>(), 3);
    }
}
