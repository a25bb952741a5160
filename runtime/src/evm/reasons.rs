//! Palisade's own names for why an EVM transaction halted or could not run.
//! Receipts are hashed into every block header, so what they say must not
//! change when revm rewords its messages or adds a variant.

use revm::context_interface::result::{HaltReason, InvalidTransaction, OutOfGasError};

/// A stable name for an exceptional halt (all gas is used).
pub(crate) fn halt(reason: &HaltReason) -> &'static str {
    match reason {
        HaltReason::OutOfGas(OutOfGasError::Basic | OutOfGasError::ReentrancySentry) => {
            "out of gas"
        }
        HaltReason::OutOfGas(OutOfGasError::Memory | OutOfGasError::MemoryLimit) => {
            "out of gas: memory"
        }
        HaltReason::OutOfGas(OutOfGasError::Precompile) => "out of gas: precompile",
        HaltReason::OutOfGas(OutOfGasError::InvalidOperand) => "out of gas: invalid operand",
        HaltReason::OpcodeNotFound | HaltReason::NotActivated => "invalid opcode",
        HaltReason::InvalidFEOpcode => "invalid opcode 0xfe",
        HaltReason::InvalidJump => "invalid jump destination",
        HaltReason::StackUnderflow => "stack underflow",
        HaltReason::StackOverflow => "stack overflow",
        HaltReason::OutOfOffset => "return data out of bounds",
        HaltReason::CreateCollision => "contract address collision",
        HaltReason::PrecompileError | HaltReason::PrecompileErrorWithContext(_) => {
            "precompile failed"
        }
        HaltReason::NonceOverflow => "nonce overflow",
        HaltReason::CreateContractSizeLimit => "contract code too large",
        HaltReason::CreateContractStartingWithEF => "contract code starts with 0xef",
        HaltReason::CreateInitCodeSizeLimit => "init code too large",
        HaltReason::StateChangeDuringStaticCall | HaltReason::CallNotAllowedInsideStatic => {
            "state change in a static call"
        }
        HaltReason::OutOfFunds | HaltReason::OverflowPayment => "insufficient funds for transfer",
        HaltReason::CallTooDeep => "call depth exceeded",
    }
}

/// A stable name for why revm would not run a transaction at all.
pub(crate) fn invalid(reason: &InvalidTransaction) -> &'static str {
    use InvalidTransaction as I;
    match reason {
        I::NonceTooHigh { .. } => "nonce too high",
        I::NonceTooLow { .. } => "nonce too low",
        I::NonceOverflowInTransaction => "nonce overflow",
        I::CallGasCostMoreThanGasLimit { .. } | I::GasFloorMoreThanGasLimit { .. } => {
            "intrinsic gas too low"
        }
        I::TxGasLimitGreaterThanCap { .. } | I::CallerGasLimitMoreThanBlock => {
            "gas limit above the per-transaction cap"
        }
        I::LackOfFundForMaxFee { .. } | I::OverflowPaymentInTransaction => {
            "insufficient funds for gas * price + value"
        }
        I::GasPriceLessThanBasefee => "max fee per gas less than block base fee",
        I::PriorityFeeGreaterThanMaxFee => "max priority fee per gas higher than max fee per gas",
        I::RejectCallerWithCode => "sender is a contract",
        I::CreateInitCodeSizeLimit => "init code too large",
        I::InvalidChainId | I::MissingChainId => "wrong chain id",
        _ => "transaction type not supported",
    }
}

/// Longest revert reason a receipt's error text repeats (the whole revert
/// data is in the receipt's output).
const MAX_REASON: usize = 256;

/// The message of revert data that is Solidity's `Error(string)`, or a
/// description of a `Panic(uint256)`; `None` for anything else (custom
/// errors, empty data), which callers decode with the contract's ABI.
pub fn revert_reason(output: &[u8]) -> Option<String> {
    let (selector, body) = output.split_at_checked(4)?;
    match selector {
        [0x08, 0xc3, 0x79, 0xa0] => {
            let word = |i: usize| -> Option<usize> {
                let w = body.get(i * 32..(i + 1) * 32)?;
                // Offsets and lengths beyond 32 bits are malformed here.
                if w[..28].iter().any(|b| *b != 0) {
                    return None;
                }
                Some(u32::from_be_bytes([w[28], w[29], w[30], w[31]]) as usize)
            };
            let offset = word(0)?;
            if offset % 32 != 0 {
                return None;
            }
            let len = word(offset / 32)?;
            let start = offset.checked_add(32)?;
            let text = body.get(start..start.checked_add(len)?)?;
            let text = String::from_utf8_lossy(text);
            Some(truncate(&text))
        }
        [0x4e, 0x48, 0x7b, 0x71] if body.len() == 32 => Some(panic_text(body).to_string()),
        _ => None,
    }
}

/// Solidity's panic codes, by the last byte of the 32-byte code.
fn panic_text(code: &[u8]) -> &'static str {
    if code[..31].iter().any(|b| *b != 0) {
        return "panic";
    }
    match code[31] {
        0x00 => "panic 0x00 (generic)",
        0x01 => "panic 0x01 (assertion failed)",
        0x11 => "panic 0x11 (arithmetic overflow or underflow)",
        0x12 => "panic 0x12 (division or modulo by zero)",
        0x21 => "panic 0x21 (invalid enum value)",
        0x22 => "panic 0x22 (invalid storage byte array)",
        0x31 => "panic 0x31 (pop on an empty array)",
        0x32 => "panic 0x32 (array index out of bounds)",
        0x41 => "panic 0x41 (out of memory)",
        0x51 => "panic 0x51 (call to an uninitialized function)",
        _ => "panic",
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_REASON {
        return s.to_string();
    }
    let mut end = MAX_REASON;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
