use palisade_types::Round;

use super::{Mock, MockCtx, Send};
use crate::Message;

/// Behaves honestly but also sends correctly signed copies of each vote for
/// absurd rounds (far ahead and `u32::MAX`), trying to drag others there or
/// make them keep state for those rounds.
#[derive(Debug, Clone, Copy, Default)]
pub struct AbsurdRounds;

impl Mock for AbsurdRounds {
    fn outgoing(&mut self, ctx: &MockCtx<'_>, msg: Message) -> Vec<Send> {
        let mut out = vec![Send::All(msg.clone())];
        if let Message::Vote(v) = msg {
            for round in [
                Round(v.vote.round.get().saturating_add(1_000)),
                Round(u32::MAX),
            ] {
                let mut vote = v.vote.clone();
                vote.round = round;
                out.push(Send::All(Message::Vote(vote.sign(ctx.chain_id, ctx.key))));
            }
        }
        out
    }
}
