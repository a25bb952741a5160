//! The `deployer` rule inside execution: a transaction whose sender may not
//! deploy fails as a whole at its first contract creation, whether the
//! transaction itself creates or a contract it calls runs CREATE or
//! CREATE2. Judged by the transaction's sender, fixed before it runs, so
//! every node decides alike.

use revm::interpreter::{CreateInputs, CreateOutcome, Gas, InstructionResult, InterpreterResult};
use revm::primitives::Bytes;
use revm::Inspector;

#[derive(Debug, Default)]
pub(crate) struct DeployGuard {
    /// The sender may create contracts.
    pub allowed: bool,
    /// A creation was refused: the transaction fails.
    pub denied: bool,
}

impl<CTX> Inspector<CTX> for DeployGuard {
    fn create(&mut self, _context: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        if self.allowed {
            return None;
        }
        self.denied = true;
        // The creation fails without running; its gas goes back to the
        // caller. The whole transaction is then reported as refused.
        Some(CreateOutcome::new(
            InterpreterResult::new(
                InstructionResult::Revert,
                Bytes::new(),
                Gas::new(inputs.gas_limit()),
            ),
            None,
        ))
    }
}
