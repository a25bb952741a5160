use borsh::{BorshDeserialize, BorshSerialize};
use palisade_types::{Hash, Height, Round, SignedProposal, SignedVote, VoteType};

use crate::transition::RoundState;
use crate::Step;

/// A message this node signed.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SignedMessage {
    Proposal(SignedProposal),
    Vote(SignedVote),
}

impl SignedMessage {
    fn step(&self) -> Step {
        match self {
            SignedMessage::Proposal(_) => Step::Propose,
            SignedMessage::Vote(v) => step_of(v.vote.vote_type),
        }
    }

    fn round(&self) -> Round {
        match self {
            SignedMessage::Proposal(p) => p.proposal.round,
            SignedMessage::Vote(v) => v.vote.round,
        }
    }
}

/// What must survive a crash for this node never to sign two conflicting
/// messages: the latest (height, round) it signed in, the highest step it
/// signed there, the messages themselves (so they are re-sent, never
/// re-made, and peers that missed them while we were down still get them)
/// and its Tendermint lock. The node writes it durably before sending any
/// message that changed it.
#[derive(Debug, Clone, PartialEq, Eq, Default, BorshSerialize, BorshDeserialize)]
pub struct SignerState {
    pub height: Height,
    pub round: Round,
    /// Highest step signed at (`height`, `round`); `None` before anything was signed.
    pub step: Option<Step>,
    /// Everything signed at `height` in `round`, and in the last earlier
    /// round this node signed in at that height: at most a proposal, a
    /// prevote and a precommit each. The earlier round's are kept because
    /// peers still in that round may need them (its precommits count toward
    /// their line 47) and a restarted node cannot sign them again.
    pub signed: Vec<SignedMessage>,
    /// lockedRound and the locked block's hash at `height`.
    pub locked: Option<(Round, Hash)>,
    /// validRound and the valid block's hash at `height` (validRound >= lockedRound).
    pub valid: Option<(Round, Hash)>,
    /// The +2/3 prevotes for the valid block in validRound. After a restart
    /// they let this node justify re-proposing the block (line 28 at its
    /// peers), without which a network whose locked nodes all restarted
    /// could never move past their lock.
    pub polka: Vec<SignedVote>,
}

/// The Tendermint lock state saved with each signature, as restored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LockState {
    pub locked: Option<(Round, Hash)>,
    pub valid: Option<(Round, Hash)>,
    pub polka: Vec<SignedVote>,
}

/// What to do when asked to sign at (height, round, step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignCheck {
    /// Nothing signed at or after this position: sign.
    Sign,
    /// Already signed at exactly this position: send that message again,
    /// never a new one.
    Resend(SignedMessage),
    /// Already signed at a later position: stay silent.
    Refuse,
}

impl SignerState {
    pub(crate) fn check(&self, height: Height, round: Round, step: Step) -> SignCheck {
        let Some(last_step) = self.step else {
            return SignCheck::Sign;
        };
        match (height, round).cmp(&(self.height, self.round)) {
            std::cmp::Ordering::Greater => SignCheck::Sign,
            std::cmp::Ordering::Less => SignCheck::Refuse,
            std::cmp::Ordering::Equal => {
                let here = |m: &&SignedMessage| m.round() == round && m.step() == step;
                if let Some(m) = self.signed.iter().find(here) {
                    SignCheck::Resend(m.clone())
                } else if step > last_step {
                    SignCheck::Sign
                } else {
                    SignCheck::Refuse
                }
            }
        }
    }

    /// Records a new signature at `height` and the state's round and step,
    /// which `check` allowed, with the lock of `state` and the `polka`
    /// behind its validValue.
    pub(crate) fn record(
        &mut self,
        height: Height,
        msg: SignedMessage,
        state: &RoundState,
        polka: &[SignedVote],
    ) {
        let round = state.round;
        if height != self.height {
            self.signed.clear();
        } else if round != self.round {
            // The round signed in until now becomes the earlier round.
            let last = self.round;
            self.signed.retain(|m| m.round() == last);
        }
        self.height = height;
        self.round = round;
        self.step = Some(msg.step());
        self.signed.push(msg);
        self.locked = state.locked;
        self.valid = state.valid;
        self.polka.clear();
        self.polka.extend_from_slice(polka);
    }

    /// The lock state to restore when (re)starting `height`.
    pub(crate) fn lock_at(&self, height: Height) -> LockState {
        if self.height == height {
            LockState {
                locked: self.locked,
                valid: self.valid,
                polka: self.polka.clone(),
            }
        } else {
            LockState::default()
        }
    }

    /// Round to resume at when (re)starting `height`: never before a round
    /// this node already signed in.
    pub(crate) fn resume_round(&self, height: Height) -> Round {
        if self.height == height && self.step.is_some() {
            self.round
        } else {
            Round::ZERO
        }
    }

    /// Votes signed at `height` (this round and the earlier one kept), to
    /// count again after a restart.
    pub(crate) fn votes_at(&self, height: Height) -> impl Iterator<Item = &SignedVote> {
        self.signed.iter().filter_map(move |m| match m {
            SignedMessage::Vote(v) if self.height == height => Some(v),
            _ => None,
        })
    }
}

pub(crate) fn step_of(vote_type: VoteType) -> Step {
    match vote_type {
        VoteType::Prevote => Step::Prevote,
        VoteType::Precommit => Step::Precommit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transition::StepState;
    use palisade_types::{ChainId, Keypair, Vote};

    fn at(round: u32, lock: &LockState) -> RoundState {
        RoundState {
            round: Round(round),
            step: StepState::Prevote,
            locked: lock.locked,
            valid: lock.valid,
        }
    }

    fn prevote(h: u64, r: u32) -> SignedMessage {
        let k = Keypair::from_seed([1; 32]);
        SignedMessage::Vote(
            Vote {
                vote_type: VoteType::Prevote,
                height: Height(h),
                round: Round(r),
                block_hash: None,
                validator: k.public_key(),
            }
            .sign(&ChainId::new("t").unwrap(), &k),
        )
    }

    #[test]
    fn order_of_positions() {
        let mut s = SignerState::default();
        assert_eq!(s.check(Height(0), Round(0), Step::Propose), SignCheck::Sign);
        s.record(Height(5), prevote(5, 2), &at(2, &LockState::default()), &[]);
        assert_eq!(
            s.check(Height(5), Round(2), Step::Precommit),
            SignCheck::Sign
        );
        assert_eq!(s.check(Height(5), Round(3), Step::Propose), SignCheck::Sign);
        assert_eq!(s.check(Height(6), Round(0), Step::Propose), SignCheck::Sign);
        // Propose at the same round after prevoting: too late.
        assert_eq!(
            s.check(Height(5), Round(2), Step::Propose),
            SignCheck::Refuse
        );
        assert_eq!(
            s.check(Height(5), Round(1), Step::Precommit),
            SignCheck::Refuse
        );
        assert_eq!(
            s.check(Height(4), Round(9), Step::Precommit),
            SignCheck::Refuse
        );
        // Same position: the saved message, never a new one.
        assert_eq!(
            s.check(Height(5), Round(2), Step::Prevote),
            SignCheck::Resend(prevote(5, 2))
        );
    }

    #[test]
    fn keeps_the_last_two_rounds_of_a_height() {
        let none = LockState::default();
        let mut s = SignerState::default();
        s.record(Height(5), prevote(5, 2), &at(2, &none), &[]);
        s.record(Height(5), prevote(5, 3), &at(3, &none), &[]);
        assert_eq!(s.signed, vec![prevote(5, 2), prevote(5, 3)]);
        // The earlier round's message is never what a new signature at
        // this round finds.
        assert_eq!(
            s.check(Height(5), Round(3), Step::Precommit),
            SignCheck::Sign
        );
        assert_eq!(
            s.check(Height(5), Round(3), Step::Prevote),
            SignCheck::Resend(prevote(5, 3))
        );
        s.record(Height(5), prevote(5, 7), &at(7, &none), &[]);
        assert_eq!(s.signed, vec![prevote(5, 3), prevote(5, 7)]);
        assert_eq!(s.votes_at(Height(5)).count(), 2);
        assert_eq!(s.votes_at(Height(6)).count(), 0);
        s.record(Height(6), prevote(6, 0), &at(0, &none), &[]);
        assert_eq!(s.signed, vec![prevote(6, 0)]);
    }

    #[test]
    fn state_round_trips_through_borsh() {
        let mut s = SignerState::default();
        let lock = LockState {
            locked: Some((Round(1), Hash([4; 32]))),
            valid: Some((Round(1), Hash([4; 32]))),
            polka: Vec::new(),
        };
        s.record(Height(9), prevote(9, 1), &at(1, &lock), &lock.polka);
        assert_eq!(s.lock_at(Height(9)), lock);
        assert_eq!(s.lock_at(Height(10)), LockState::default());
        let bytes = borsh::to_vec(&s).unwrap();
        assert_eq!(borsh::from_slice::<SignerState>(&bytes).unwrap(), s);
    }
}
