//! Log filters: which logs a filter selects, and which blocks may hold
//! any (by their logs bloom), so `eth_getLogs` reads only those.

use palisade_runtime::evm::LogsBloom;
use palisade_runtime::{EvmLog, Receipt};
use palisade_types::{Block, EvmAddress, Hash, Height};

use super::quantity::{data, q};
use super::types::{EthLog, LogFilter};
use crate::api::RpcResult;
use crate::errors::invalid_params;

/// Most blocks one `eth_getLogs` may span.
pub const MAX_LOG_BLOCKS: u64 = 10_000;
/// Most logs one `eth_getLogs` returns.
pub const MAX_LOGS: usize = 10_000;
/// Most addresses and topic values one filter may list, in all.
pub const MAX_FILTER_VALUES: usize = 1_024;
/// Topic positions a log has at most (LOG0..LOG4).
const MAX_TOPICS: usize = 4;

/// A parsed filter's address and topic conditions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    /// Any of these (any address when empty).
    addresses: Vec<EvmAddress>,
    /// Per position, any of these (any topic when empty).
    topics: Vec<Vec<Hash>>,
}

impl Matcher {
    pub fn new(filter: &LogFilter) -> RpcResult<Matcher> {
        let addresses = filter
            .address
            .iter()
            .flat_map(|a| a.values())
            .map(|s| {
                s.parse::<EvmAddress>()
                    .map_err(|e| invalid_params(format!("address {s:?}: {e}")))
            })
            .collect::<RpcResult<Vec<_>>>()?;
        let positions = filter.topics.as_deref().unwrap_or_default();
        if positions.len() > MAX_TOPICS {
            return Err(invalid_params(format!(
                "topics: at most {MAX_TOPICS} positions, got {}",
                positions.len()
            )));
        }
        let topics = positions
            .iter()
            .map(|p| {
                p.iter()
                    .flat_map(|v| v.values())
                    .map(|s| {
                        s.parse::<Hash>()
                            .map_err(|e| invalid_params(format!("topic {s:?}: {e}")))
                    })
                    .collect::<RpcResult<Vec<_>>>()
            })
            .collect::<RpcResult<Vec<_>>>()?;
        let values = addresses.len() + topics.iter().map(Vec::len).sum::<usize>();
        if values > MAX_FILTER_VALUES {
            return Err(invalid_params(format!(
                "the filter lists {values} addresses and topics; at most {MAX_FILTER_VALUES}"
            )));
        }
        Ok(Matcher { addresses, topics })
    }

    pub fn matches(&self, log: &EvmLog) -> bool {
        (self.addresses.is_empty() || self.addresses.contains(&log.address))
            && self.topics.iter().enumerate().all(|(i, any)| {
                any.is_empty() || log.topics.get(i).is_some_and(|t| any.contains(t))
            })
    }

    /// False only if no log of a block with `bloom` can match.
    pub fn may_match(&self, bloom: &LogsBloom) -> bool {
        (self.addresses.is_empty()
            || self
                .addresses
                .iter()
                .any(|a| bloom.may_contain(a.as_bytes())))
            && self
                .topics
                .iter()
                .all(|any| any.is_empty() || any.iter().any(|t| bloom.may_contain(&t.0)))
    }
}

/// The Ethereum view of a block's logs, in order: each with the index of
/// its transaction's receipt in `receipts` (the block's transactions, in
/// order). `transactionIndex` and `logIndex` count EVM transactions and
/// their logs only, as the Ethereum view lists only those.
pub fn block_logs<'a>(
    block_hash: &Hash,
    height: Height,
    receipts: &'a [Receipt],
) -> impl Iterator<Item = (usize, &'a EvmLog, EthLog)> + 'a {
    let block_hash = block_hash.to_string();
    let number = q(height.get().into());
    receipts
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.evm.as_ref().map(|e| (i, r, e)))
        .enumerate()
        .flat_map(|(position, (i, r, e))| e.logs.iter().map(move |l| (position, i, &r.tx_hash, l)))
        .enumerate()
        .map(move |(log_index, (position, i, tx_hash, l))| {
            (
                i,
                l,
                EthLog {
                    address: l.address.to_string(),
                    topics: l.topics.iter().map(|t| t.to_string()).collect(),
                    data: data(&l.data),
                    block_number: number.clone(),
                    block_hash: block_hash.clone(),
                    transaction_hash: tx_hash.to_string(),
                    transaction_index: q(position as u128),
                    log_index: q(log_index as u128),
                    removed: false,
                },
            )
        })
}

/// The logs of `block` that `matcher` selects, appended to `out`.
pub fn select(matcher: &Matcher, block: &Block, receipts: &[Receipt], out: &mut Vec<EthLog>) {
    let hash = block.hash();
    out.extend(
        block_logs(&hash, block.height(), receipts)
            .filter(|(_, l, _)| matcher.matches(l))
            .map(|(_, _, view)| view),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::types::OneOrMany;
    use palisade_runtime::EvmReceipt;

    fn log(address: u8, topics: &[u8]) -> EvmLog {
        EvmLog {
            address: EvmAddress([address; 20]),
            topics: topics.iter().map(|t| Hash([*t; 32])).collect(),
            data: vec![address],
        }
    }

    fn hex20(b: u8) -> String {
        EvmAddress([b; 20]).to_string()
    }

    fn hex32(b: u8) -> String {
        Hash([b; 32]).to_string()
    }

    #[test]
    fn filters_select_by_address_and_topic_position() {
        let cases: &[(LogFilter, &[bool])] = &[
            (LogFilter::default(), &[true, true, true]),
            (
                LogFilter {
                    address: Some(OneOrMany::One(hex20(1))),
                    ..Default::default()
                },
                &[true, true, false],
            ),
            (
                LogFilter {
                    address: Some(OneOrMany::Many(vec![hex20(1), hex20(2)])),
                    ..Default::default()
                },
                &[true, true, true],
            ),
            (
                LogFilter {
                    topics: Some(vec![None, Some(OneOrMany::One(hex32(9)))]),
                    ..Default::default()
                },
                &[false, true, false],
            ),
            (
                LogFilter {
                    topics: Some(vec![Some(OneOrMany::Many(vec![hex32(7), hex32(8)]))]),
                    ..Default::default()
                },
                &[true, true, true],
            ),
            (
                LogFilter {
                    topics: Some(vec![
                        Some(OneOrMany::Many(vec![])),
                        Some(OneOrMany::One(hex32(9))),
                    ]),
                    ..Default::default()
                },
                &[false, true, false],
            ),
        ];
        let logs = [log(1, &[7]), log(1, &[8, 9]), log(2, &[7, 3])];
        for (filter, want) in cases {
            let m = Matcher::new(filter).unwrap();
            let got: Vec<bool> = logs.iter().map(|l| m.matches(l)).collect();
            assert_eq!(&got, want, "{filter:?}");
            // The bloom of the matching logs never rules them out.
            for (l, w) in logs.iter().zip(*want) {
                let mut bloom = LogsBloom::default();
                bloom.accrue_log(l);
                assert!(!w || m.may_match(&bloom), "{filter:?}");
            }
        }
    }

    #[test]
    fn a_bloom_without_the_address_rules_the_block_out() {
        let m = Matcher::new(&LogFilter {
            address: Some(OneOrMany::One(hex20(5))),
            ..Default::default()
        })
        .unwrap();
        let mut bloom = LogsBloom::default();
        bloom.accrue_log(&log(1, &[7]));
        assert!(!m.may_match(&bloom));
        assert!(m.may_match(&LogsBloom::FULL));
    }

    #[test]
    fn hostile_filters_are_refused() {
        let five = LogFilter {
            topics: Some(vec![None; 5]),
            ..Default::default()
        };
        assert!(Matcher::new(&five).is_err());
        let many = LogFilter {
            address: Some(OneOrMany::Many(vec![hex20(1); MAX_FILTER_VALUES + 1])),
            ..Default::default()
        };
        assert!(Matcher::new(&many).is_err());
        let bad = LogFilter {
            address: Some(OneOrMany::One("0x12".into())),
            ..Default::default()
        };
        assert!(Matcher::new(&bad).is_err());
    }

    #[test]
    fn log_indexes_count_evm_transactions_and_their_logs() {
        let evm = |logs: Vec<EvmLog>| {
            Some(EvmReceipt {
                gas_used: 1,
                contract_address: None,
                logs,
                output: vec![],
            })
        };
        let receipt = |n: u8, e| Receipt {
            tx_hash: Hash([n; 32]),
            code: 0,
            error: String::new(),
            events: vec![],
            evm: e,
        };
        let receipts = vec![
            receipt(1, None),
            receipt(2, evm(vec![log(1, &[]), log(1, &[])])),
            receipt(3, None),
            receipt(4, evm(vec![])),
            receipt(5, evm(vec![log(2, &[])])),
        ];
        let got: Vec<(usize, String, String)> = block_logs(&Hash::ZERO, Height(3), &receipts)
            .map(|(i, _, v)| (i, v.transaction_index, v.log_index))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "0x0".into(), "0x0".into()),
                (1, "0x0".into(), "0x1".into()),
                (4, "0x2".into(), "0x2".into()),
            ]
        );
    }
}
