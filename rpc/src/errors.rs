//! Stable JSON-RPC error codes. Clients match on the code; the message is
//! for people. Codes never change meaning; new ones are only added.

use jsonrpsee::types::ErrorObjectOwned;

/// Malformed parameters: bad hex, wrong length, unknown field.
pub const INVALID_PARAMS: i32 = -32602;
/// The node failed internally (storage error); the request may be retried.
pub const INTERNAL: i32 = -32603;
/// The transaction bytes do not decode (size, trailing bytes, bad field).
pub const TX_MALFORMED: i32 = -32001;
/// The transaction was refused by the runtime's checks (signature, chain
/// id, role, nonce, funds, size); `data` holds the reason code.
pub const TX_REJECTED: i32 = -32002;
/// The mempool already holds this transaction.
pub const TX_DUPLICATE: i32 = -32003;
/// The mempool is full; retry later.
pub const MEMPOOL_FULL: i32 = -32004;
/// `tx_submitAndWait` timed out before the transaction was committed (it
/// may still be committed later).
pub const TIMEOUT: i32 = -32005;
/// The requested height is above the latest or below what is kept.
pub const HEIGHT_UNAVAILABLE: i32 = -32006;

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
