use std::sync::Arc;

use palisade_types::Hash;

use super::{Mock, MockCtx, Send};
use crate::Message;

/// As proposer, proposes a block whose transaction root is wrong (correctly
/// signed proposal, invalid block). Votes honestly otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct InvalidBlocks;

impl Mock for InvalidBlocks {
    fn outgoing(&mut self, ctx: &MockCtx<'_>, msg: Message) -> Vec<Send> {
        match msg {
            Message::Proposal { proposal, block } => {
                let mut bad = (*block).clone();
                bad.header.tx_root = Hash([0xbd; 32]);
                let mut p = proposal.proposal;
                p.block_hash = bad.hash();
                vec![Send::All(Message::Proposal {
                    proposal: p.sign(ctx.chain_id, ctx.key),
                    block: Arc::new(bad),
                })]
            }
            vote => vec![Send::All(vote)],
        }
    }
}
