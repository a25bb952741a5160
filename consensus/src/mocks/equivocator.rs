use std::sync::Arc;

use palisade_types::{Timestamp, Vote};

use super::{Mock, MockCtx, Send};
use crate::Message;

/// Tries to split the network. As proposer it sends one (valid) block to
/// the even-numbered peers and another to the odd ones; as voter it never casts an honest vote but tells each peer
/// it agrees with whatever that peer voted ("echo"), so it double-votes in
/// every round. With at most f such validators honest nodes still agree;
/// with f+1 they can be split (the simulator's negative control).
#[derive(Debug, Clone, Copy, Default)]
pub struct Equivocator;

impl Mock for Equivocator {
    fn outgoing(&mut self, ctx: &MockCtx<'_>, msg: Message) -> Vec<Send> {
        match msg {
            Message::Proposal { proposal, block } => (0..ctx.nodes)
                .filter(|&peer| peer != ctx.me)
                .map(|peer| {
                    // Two versions, split by peer parity: each half of the
                    // network can then form a quorum with the echoes.
                    let mut b = (*block).clone();
                    b.header.time =
                        Timestamp(b.header.time.as_millis().wrapping_add(peer as u64 % 2 + 1));
                    let mut p = proposal.proposal.clone();
                    p.block_hash = b.hash();
                    Send::To(
                        peer,
                        Message::Proposal {
                            proposal: p.sign(ctx.chain_id, ctx.key),
                            block: Arc::new(b),
                        },
                    )
                })
                .collect(),
            // Its own honest votes are withheld; echoes replace them.
            Message::Vote(_) => Vec::new(),
        }
    }

    fn incoming(&mut self, ctx: &MockCtx<'_>, from: usize, msg: &Message) -> Vec<Send> {
        let Message::Vote(v) = msg else {
            return Vec::new();
        };
        let echo = Vote {
            validator: ctx.key.public_key(),
            ..v.vote.clone()
        }
        .sign(ctx.chain_id, ctx.key);
        vec![Send::To(from, Message::Vote(echo))]
    }
}
