use super::{Mock, MockCtx, Send};
use crate::Message;

/// Sends every message with one bit of its signature flipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct BadSignatures;

impl Mock for BadSignatures {
    fn outgoing(&mut self, _ctx: &MockCtx<'_>, msg: Message) -> Vec<Send> {
        let msg = match msg {
            Message::Proposal {
                mut proposal,
                block,
            } => {
                proposal.signature.0[7] ^= 0x10;
                Message::Proposal { proposal, block }
            }
            Message::Vote(mut v) => {
                v.signature.0[40] ^= 0x01;
                Message::Vote(v)
            }
        };
        vec![Send::All(msg)]
    }
}
