//! Stable JSON-RPC error codes. Clients match on the code; the message is
//! for people. Codes never change meaning; new ones are only added.
//!
//! Three sources share the code space, and no code means two things:
//!
//! - the JSON-RPC 2.0 specification's own codes (-32700, -32600 to -32603);
//! - the codes jsonrpsee, the server library, defines in
//!   `jsonrpsee_types::error` (-32000, -32001 and -32005 to -32011; it sends
//!   -32006 for too many subscriptions, -32007 for a request too big,
//!   -32008 for a response too big, -32010 and -32011 for batches);
//! - Palisade's own: -32002 to -32004 and -32040 upwards, listed in
//!   [`PALISADE`]. Before issue 26 transactions that did not decode were
//!   -32001, `tx_submitAndWait` timeouts -32005 and unavailable heights
//!   -32006, codes jsonrpsee also defines (and, for -32006, sends); those
//!   three moved to -32040 to -32042.
//!
//! `docs/rpc.md` documents every code a client can receive ([`ALL`]); a
//! test checks that it does.

use jsonrpsee::types::ErrorObjectOwned;
use palisade_types::Height;

/// The body is not JSON (specification).
pub const PARSE_ERROR: i32 = -32700;
/// The JSON is not a valid request object (specification).
pub const INVALID_REQUEST: i32 = -32600;
/// No such method (specification).
pub const METHOD_NOT_FOUND: i32 = -32601;
/// Malformed parameters: bad hex, wrong length, unknown field.
pub const INVALID_PARAMS: i32 = -32602;
/// The node failed internally (storage error); the request may be retried.
pub const INTERNAL: i32 = -32603;

/// jsonrpsee: the connection already holds
/// `rpc.max_subscriptions_per_connection` subscriptions.
pub const TOO_MANY_SUBSCRIPTIONS: i32 = jsonrpsee::types::error::TOO_MANY_SUBSCRIPTIONS_CODE;
/// jsonrpsee: the request is over `rpc.max_request_bytes`.
pub const REQUEST_TOO_BIG: i32 = jsonrpsee::types::error::OVERSIZED_REQUEST_CODE;
/// jsonrpsee: the response would be over `rpc.max_response_bytes`.
pub const RESPONSE_TOO_BIG: i32 = jsonrpsee::types::error::OVERSIZED_RESPONSE_CODE;
/// jsonrpsee: the batch is longer than `rpc.max_batch`.
pub const BATCH_TOO_LONG: i32 = jsonrpsee::types::error::TOO_BIG_BATCH_REQUEST_CODE;
/// jsonrpsee: the batch's responses together are over
/// `rpc.max_response_bytes`.
pub const BATCH_RESPONSE_TOO_BIG: i32 = jsonrpsee::types::error::TOO_BIG_BATCH_RESPONSE_CODE;

/// The transaction was refused by the runtime's checks (signature, chain
/// id, role, nonce, funds, size); `data` holds the reason code.
pub const TX_REJECTED: i32 = -32002;
/// The mempool already holds this transaction.
pub const TX_DUPLICATE: i32 = -32003;
/// The mempool is full; retry later.
pub const MEMPOOL_FULL: i32 = -32004;
/// The transaction bytes do not decode (size, trailing bytes, bad field).
pub const TX_MALFORMED: i32 = -32040;
/// `tx_submitAndWait` timed out before the transaction was committed (it
/// may still be committed later).
pub const TIMEOUT: i32 = -32041;
/// The requested height is above the latest or below what is kept.
pub const HEIGHT_UNAVAILABLE: i32 = -32042;
/// An `eth_getLogs` query spans too many blocks or selects too many logs.
pub const TOO_MANY_RESULTS: i32 = -32043;
/// The node keeps no account index (`ledger.account_index = false`).
pub const NOT_INDEXED: i32 = -32044;
/// The height is below what this node keeps (`[pruning]`, or it started
/// from a snapshot); `data` is the first height it has.
pub const PRUNED: i32 = -32045;
/// No file with this root is on record.
pub const FILE_UNKNOWN: i32 = -32050;
/// The permit may not fetch the file: void, not a reader's, or the file
/// was unpublished (`data` says which).
pub const FILE_REFUSED: i32 = -32051;
/// The node runs as many downloads as it may.
pub const FILES_BUSY: i32 = -32052;
/// Not available on this node: it does not share files, does not hold the
/// file, or an unpin is refused until enough peers hold it.
pub const FILES_UNAVAILABLE: i32 = -32053;
/// A method that manages the node's disk, called from another machine.
pub const LOCAL_ONLY: i32 = -32054;

/// The Ethereum methods' code for a call or gas estimate that reverted,
/// as Ethereum nodes answer it (`data`: the revert data).
pub const EXECUTION_REVERTED: i32 = 3;
/// The Ethereum methods' code for a call that failed otherwise (out of gas,
/// an invalid opcode), jsonrpsee's and Ethereum nodes' -32000.
pub const EXECUTION_FAILED: i32 = jsonrpsee::types::error::CALL_EXECUTION_FAILED_CODE;

/// Palisade's own codes.
pub const PALISADE: &[i32] = &[
    TX_REJECTED,
    TX_DUPLICATE,
    MEMPOOL_FULL,
    TX_MALFORMED,
    TIMEOUT,
    HEIGHT_UNAVAILABLE,
    TOO_MANY_RESULTS,
    NOT_INDEXED,
    PRUNED,
    FILE_UNKNOWN,
    FILE_REFUSED,
    FILES_BUSY,
    FILES_UNAVAILABLE,
    LOCAL_ONLY,
];

/// Every code this server sends: the specification's, jsonrpsee's and
/// Palisade's.
pub const ALL: &[i32] = &[
    PARSE_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    INVALID_PARAMS,
    INTERNAL,
    TOO_MANY_SUBSCRIPTIONS,
    REQUEST_TOO_BIG,
    RESPONSE_TOO_BIG,
    BATCH_TOO_LONG,
    BATCH_RESPONSE_TOO_BIG,
    TX_REJECTED,
    TX_DUPLICATE,
    MEMPOOL_FULL,
    TX_MALFORMED,
    TIMEOUT,
    HEIGHT_UNAVAILABLE,
    TOO_MANY_RESULTS,
    NOT_INDEXED,
    PRUNED,
    FILE_UNKNOWN,
    FILE_REFUSED,
    FILES_BUSY,
    FILES_UNAVAILABLE,
    LOCAL_ONLY,
    EXECUTION_REVERTED,
    EXECUTION_FAILED,
];

pub fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

pub fn error_with(code: i32, message: impl Into<String>, data: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), Some(data))
}

pub fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    error(INVALID_PARAMS, message)
}

pub fn internal(message: impl Into<String>) -> ErrorObjectOwned {
    error(INTERNAL, message)
}

/// A failure of the node's storage behind a call (the node's backend).
/// `h`'s `what` (blocks, state) is pruned here: the node has it from
/// `from` on.
pub fn pruned(what: &str, h: Height, from: Height) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        PRUNED,
        format!("height {h} is pruned on this node: it keeps {what} from height {from}"),
        Some(from.get()),
    )
}

pub(crate) fn backend_err(e: crate::backend::BackendError) -> ErrorObjectOwned {
    internal(format!("node storage: {e}"))
}

/// A failure of the state store behind a call.
pub(crate) fn store_err(e: palisade_runtime::StoreError) -> ErrorObjectOwned {
    internal(format!("node storage: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonrpsee::types::error as lib;

    /// Every code jsonrpsee 0.26 defines, used by its server or not.
    const JSONRPSEE: &[i32] = &[
        lib::PARSE_ERROR_CODE,
        lib::INVALID_REQUEST_CODE,
        lib::METHOD_NOT_FOUND_CODE,
        lib::INVALID_PARAMS_CODE,
        lib::INTERNAL_ERROR_CODE,
        lib::CALL_EXECUTION_FAILED_CODE,
        lib::UNKNOWN_ERROR_CODE,
        lib::BATCHES_NOT_SUPPORTED_CODE,
        lib::TOO_MANY_SUBSCRIPTIONS_CODE,
        lib::OVERSIZED_REQUEST_CODE,
        lib::OVERSIZED_RESPONSE_CODE,
        lib::SERVER_IS_BUSY_CODE,
        lib::TOO_BIG_BATCH_REQUEST_CODE,
        lib::TOO_BIG_BATCH_RESPONSE_CODE,
    ];

    #[test]
    fn palisade_codes_are_distinct_and_never_jsonrpsee_s() {
        for (i, c) in PALISADE.iter().enumerate() {
            assert!(
                !JSONRPSEE.contains(c),
                "Palisade code {c} is also a jsonrpsee code"
            );
            assert!(
                (-32099..=-32000).contains(c),
                "{c} is outside the server-error range"
            );
            assert!(!PALISADE[i + 1..].contains(c), "{c} is used twice");
        }
    }

    #[test]
    fn every_code_is_documented() {
        let doc = include_str!("../../docs/rpc.md");
        let table = doc
            .split("## Errors")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap_or_default();
        for c in ALL {
            assert!(
                table.contains(&format!("| {c} |")),
                "docs/rpc.md's error table lacks {c}"
            );
        }
    }
}
