//! Algorithm 1 of "The latest gossip on BFT consensus" (arXiv:1807.04938)
//! as one pure function: [`apply`] takes the round state and one [`Event`]
//! and returns the next state, what to do, and the line of the paper that
//! fired. One arm per rule, in the paper's order; an event that no rule
//! takes in the current step changes nothing.
//!
//! It knows nothing of signatures, blocks or the network: events arrive
//! already judged ("a valid proposal with a polka"), from the multiplexer
//! (`multiplex`), and actions go to the driver (`Consensus`), which signs,
//! keeps the signer state durable and talks to the node.

use std::fmt;

use palisade_types::{Hash, Round};

use crate::TimeoutKind;

/// Where a height stands: Algorithm 1's `step_p`, with both ends explicit
/// (before the first round starts, and once the height is decided).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepState {
    Unstarted,
    Propose,
    Prevote,
    Precommit,
    Commit,
}

/// What Algorithm 1 keeps per height: `round_p`, `step_p`, `lockedRound`
/// and `lockedValue`, `validRound` and `validValue` (values by hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundState {
    pub round: Round,
    pub step: StepState,
    pub locked: Option<(Round, Hash)>,
    pub valid: Option<(Round, Hash)>,
}

impl RoundState {
    /// A height not yet started, with the lock it resumes from (none for
    /// a fresh height).
    pub fn unstarted(locked: Option<(Round, Hash)>, valid: Option<(Round, Hash)>) -> RoundState {
        RoundState {
            round: Round::ZERO,
            step: StepState::Unstarted,
            locked,
            valid,
        }
    }
}

/// The conditions of Algorithm 1's `upon` rules, each already checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `StartRound(round)` is called (at the start of a height, or from
    /// lines 56 and 67); `proposer`: whether this node proposes in it.
    NewRound { round: Round, proposer: bool },
    /// `getValue()` (line 18) answered: the block this node proposes.
    ProposeValue { round: Round, value: Hash },
    /// Line 22: the round's proposal, with validRound -1; `valid`: valid(v).
    Proposal {
        round: Round,
        value: Hash,
        valid: bool,
    },
    /// Line 28: the round's proposal with validRound `vr`, and +2/3
    /// prevotes for its value in `vr`.
    ProposalAndPolkaPrevious {
        round: Round,
        value: Hash,
        valid: bool,
        vr: Round,
    },
    /// Line 34: +2/3 prevotes of any values in the round.
    PolkaAny { round: Round },
    /// Line 36: the round's proposal, valid, and +2/3 prevotes for it.
    ProposalAndPolkaCurrent { round: Round, value: Hash },
    /// Line 44: +2/3 prevotes for nil in the round.
    PolkaNil { round: Round },
    /// Line 47: +2/3 precommits of any values in the round.
    PrecommitAny { round: Round },
    /// Line 49: a valid block and +2/3 precommits for it in `round` (any
    /// round of the height).
    ProposalAndPrecommitValue { round: Round, value: Hash },
    /// Line 55: messages of more than a third of the power from `round`,
    /// later than ours.
    SkipRound { round: Round },
    /// Line 57: timeoutPropose(round) fired.
    TimeoutPropose { round: Round },
    /// Line 61: timeoutPrevote(round) fired.
    TimeoutPrevote { round: Round },
    /// Line 65: timeoutPrecommit(round) fired.
    TimeoutPrecommit { round: Round },
}

/// What a rule asks the driver to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Lines 16 and 19: sign and broadcast a proposal of `value`.
    Propose {
        value: Hash,
        pol_round: Option<Round>,
    },
    /// Line 18: ask the node for a new block (`getValue()`).
    RequestValue,
    /// Sign and broadcast a prevote (lines 24, 26, 30, 32, 59).
    Prevote(Option<Hash>),
    /// Sign and broadcast a precommit (lines 40, 46, 63).
    Precommit(Option<Hash>),
    /// Start a timer of the current round (lines 21, 35, 48).
    Schedule(TimeoutKind),
    /// Lines 42-43 set validValue: keep its block and polka durably, before
    /// any precommit that depends on them leaves.
    SaveValid { value: Hash },
    /// Lines 49-54: decide `value`, committed in `round`.
    Decide { round: Round, value: Hash },
    /// Lines 56 and 67: call `StartRound(round)`.
    StartRound(Round),
}

/// A line of Algorithm 1: the `upon` rule (or `StartRound`, line 11) that
/// fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Line(pub u16);

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.0)
    }
}

/// The outcome of one event: the next state, the actions in order, and the
/// line that fired (`None`: no rule took the event; nothing changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub state: RoundState,
    pub actions: Vec<Action>,
    pub line: Option<Line>,
}

impl Transition {
    fn none(state: RoundState) -> Transition {
        Transition {
            state,
            actions: Vec::new(),
            line: None,
        }
    }

    fn fired(line: u16, state: RoundState, actions: Vec<Action>) -> Transition {
        Transition {
            state,
            actions,
            line: Some(Line(line)),
        }
    }
}

/// Algorithm 1, one arm per rule. Pure: the same state and event always
/// give the same transition. Longer than a screen on purpose: it is the
/// paper's table, read top to bottom; the arms' bodies are in helpers
/// where they repeat.
pub fn apply(s: RoundState, event: Event) -> Transition {
    use Event as E;
    use StepState::{Commit, Precommit, Prevote, Propose, Unstarted};
    let now = |r: Round| r == s.round;
    let running = matches!(s.step, Propose | Prevote | Precommit);
    match (s.step, event) {
        // Line 11: StartRound, at the height's first round or a later one.
        (Unstarted, E::NewRound { round, proposer }) => start_round(s, round, proposer),
        (_, E::NewRound { round, proposer }) if running && round > s.round => {
            start_round(s, round, proposer)
        }
        // Line 18-19: the proposer's new value, validRound -1.
        (Propose, E::ProposeValue { round, value }) if now(round) => Transition::fired(
            18,
            s,
            vec![Action::Propose {
                value,
                pol_round: None,
            }],
        ),
        // Line 22: prevote v if valid and (not locked, or locked on v);
        // else nil (line 26).
        (
            Propose,
            E::Proposal {
                round,
                value,
                valid,
            },
        ) if now(round) => {
            let ok = valid && s.locked.is_none_or(|(_, l)| l == value);
            prevote(s, 22, ok.then_some(value))
        }
        // Line 28: a re-proposal with its polka from vr < round: prevote v
        // if valid and (locked no later than vr, or on v); else nil (32).
        (
            Propose,
            E::ProposalAndPolkaPrevious {
                round,
                value,
                valid,
                vr,
            },
        ) if now(round) && vr < round => {
            let ok = valid && s.locked.is_none_or(|(lr, l)| lr <= vr || l == value);
            prevote(s, 28, ok.then_some(value))
        }
        // Line 34: +2/3 prevotes of any values: time the prevote step.
        (Prevote, E::PolkaAny { round }) if now(round) => {
            Transition::fired(34, s, vec![Action::Schedule(TimeoutKind::Prevote)])
        }
        // Line 36, in the prevote step: lock on v, precommit it, and make
        // it validValue (lines 37-43).
        (Prevote, E::ProposalAndPolkaCurrent { round, value }) if now(round) => {
            let next = RoundState {
                step: Precommit,
                locked: Some((round, value)),
                valid: Some((round, value)),
                ..s
            };
            Transition::fired(
                36,
                next,
                vec![Action::SaveValid { value }, Action::Precommit(Some(value))],
            )
        }
        // Line 36, after precommitting: only validValue changes (42-43),
        // the first time.
        (Precommit, E::ProposalAndPolkaCurrent { round, value })
            if now(round) && s.valid != Some((round, value)) =>
        {
            let next = RoundState {
                valid: Some((round, value)),
                ..s
            };
            Transition::fired(36, next, vec![Action::SaveValid { value }])
        }
        // Line 44: +2/3 prevotes for nil: precommit nil.
        (Prevote, E::PolkaNil { round }) if now(round) => precommit(s, 44, None),
        // Line 47: +2/3 precommits of any values: time the round's end.
        (_, E::PrecommitAny { round }) if running && now(round) => {
            Transition::fired(47, s, vec![Action::Schedule(TimeoutKind::Precommit)])
        }
        // Line 49: decide, in whatever round and step.
        (_, E::ProposalAndPrecommitValue { round, value }) if running => Transition::fired(
            49,
            RoundState { step: Commit, ..s },
            vec![Action::Decide { round, value }],
        ),
        // Line 55: f+1 from a later round: go there.
        (_, E::SkipRound { round }) if running && round > s.round => {
            Transition::fired(55, s, vec![Action::StartRound(round)])
        }
        // Line 57: no acceptable proposal in time: prevote nil.
        (Propose, E::TimeoutPropose { round }) if now(round) => prevote(s, 57, None),
        // Line 61: no polka in time: precommit nil.
        (Prevote, E::TimeoutPrevote { round }) if now(round) => precommit(s, 61, None),
        // Line 65: no decision in time: the next round. The last round
        // number has no next; the height then waits for a commit from
        // block sync.
        (_, E::TimeoutPrecommit { round }) if running && now(round) => match round.next() {
            Ok(next) => Transition::fired(65, s, vec![Action::StartRound(next)]),
            Err(_) => Transition::none(s),
        },
        _ => Transition::none(s),
    }
}

/// Line 11: round_p, step propose; the proposer offers validValue with
/// validRound (lines 15-16) or asks for a new value (18); everyone times
/// the proposal (21), the proposer too, so that a block that never comes
/// does not stall the round.
fn start_round(s: RoundState, round: Round, proposer: bool) -> Transition {
    let next = RoundState {
        round,
        step: StepState::Propose,
        ..s
    };
    let mut actions = vec![Action::Schedule(TimeoutKind::Propose)];
    if proposer {
        actions.push(match s.valid {
            Some((vr, value)) => Action::Propose {
                value,
                pol_round: Some(vr),
            },
            None => Action::RequestValue,
        });
    }
    Transition::fired(11, next, actions)
}

fn prevote(s: RoundState, line: u16, value: Option<Hash>) -> Transition {
    let next = RoundState {
        step: StepState::Prevote,
        ..s
    };
    Transition::fired(line, next, vec![Action::Prevote(value)])
}

fn precommit(s: RoundState, line: u16, value: Option<Hash>) -> Transition {
    let next = RoundState {
        step: StepState::Precommit,
        ..s
    };
    Transition::fired(line, next, vec![Action::Precommit(value)])
}
