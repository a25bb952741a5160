//! The pure transition table ([`palisade_consensus::apply`]), one row per
//! transition of Algorithm 1 (arXiv:1807.04938) with the line it names, and
//! rows where no rule takes the event.

use std::collections::BTreeSet;

use palisade_consensus::{apply, Action, Event, RoundState, StepState, TimeoutKind};
use palisade_types::{Hash, Round};

use StepState::{Commit, Precommit, Prevote, Propose, Unstarted};

const V: Hash = Hash([1; 32]);
const W: Hash = Hash([2; 32]);

fn at(round: u32, step: StepState) -> RoundState {
    RoundState {
        round: Round(round),
        step,
        locked: None,
        valid: None,
    }
}

fn locked(s: RoundState, round: u32, value: Hash) -> RoundState {
    RoundState {
        locked: Some((Round(round), value)),
        valid: Some((Round(round), value)),
        ..s
    }
}

fn valid(s: RoundState, round: u32, value: Hash) -> RoundState {
    RoundState {
        valid: Some((Round(round), value)),
        ..s
    }
}

struct Row {
    name: &'static str,
    from: RoundState,
    event: Event,
    /// The line that fires, or `None` when no rule takes the event (then
    /// the state must not change and nothing is done).
    line: Option<u16>,
    to: RoundState,
    actions: Vec<Action>,
}

fn none(name: &'static str, from: RoundState, event: Event) -> Row {
    Row {
        name,
        from,
        event,
        line: None,
        to: from,
        actions: vec![],
    }
}

fn rows() -> Vec<Row> {
    use Action as A;
    use Event as E;
    let r = Round;
    vec![
        Row {
            name: "a height's first round starts; another validator proposes",
            from: at(0, Unstarted),
            event: E::NewRound {
                round: r(0),
                proposer: false,
            },
            line: Some(11),
            to: at(0, Propose),
            actions: vec![A::Schedule(TimeoutKind::Propose)],
        },
        Row {
            name: "the proposer without validValue asks for a value (18)",
            from: at(0, Unstarted),
            event: E::NewRound {
                round: r(0),
                proposer: true,
            },
            line: Some(11),
            to: at(0, Propose),
            actions: vec![A::Schedule(TimeoutKind::Propose), A::RequestValue],
        },
        Row {
            name: "the proposer re-proposes validValue with validRound (15-16)",
            from: locked(at(0, Precommit), 0, V),
            event: E::NewRound {
                round: r(1),
                proposer: true,
            },
            line: Some(11),
            to: locked(at(1, Propose), 0, V),
            actions: vec![
                A::Schedule(TimeoutKind::Propose),
                A::Propose {
                    value: V,
                    pol_round: Some(r(0)),
                },
            ],
        },
        none(
            "a round never starts twice",
            at(1, Prevote),
            E::NewRound {
                round: r(1),
                proposer: false,
            },
        ),
        Row {
            name: "getValue answered: propose it with validRound -1 (19)",
            from: at(0, Propose),
            event: E::ProposeValue {
                round: r(0),
                value: V,
            },
            line: Some(18),
            to: at(0, Propose),
            actions: vec![A::Propose {
                value: V,
                pol_round: None,
            }],
        },
        Row {
            name: "valid proposal, not locked: prevote it (24)",
            from: at(0, Propose),
            event: E::Proposal {
                round: r(0),
                value: V,
                valid: true,
            },
            line: Some(22),
            to: at(0, Prevote),
            actions: vec![A::Prevote(Some(V))],
        },
        Row {
            name: "invalid proposal: prevote nil (26)",
            from: at(0, Propose),
            event: E::Proposal {
                round: r(0),
                value: V,
                valid: false,
            },
            line: Some(22),
            to: at(0, Prevote),
            actions: vec![A::Prevote(None)],
        },
        Row {
            name: "locked on another value: prevote nil (26)",
            from: locked(at(1, Propose), 0, W),
            event: E::Proposal {
                round: r(1),
                value: V,
                valid: true,
            },
            line: Some(22),
            to: locked(at(1, Prevote), 0, W),
            actions: vec![A::Prevote(None)],
        },
        Row {
            name: "locked on the proposed value: prevote it (24)",
            from: locked(at(1, Propose), 0, V),
            event: E::Proposal {
                round: r(1),
                value: V,
                valid: true,
            },
            line: Some(22),
            to: locked(at(1, Prevote), 0, V),
            actions: vec![A::Prevote(Some(V))],
        },
        none(
            "a proposal after prevoting changes nothing",
            at(0, Prevote),
            E::Proposal {
                round: r(0),
                value: V,
                valid: true,
            },
        ),
        Row {
            name: "re-proposal whose polka is not older than the lock: prevote it (30)",
            from: locked(at(2, Propose), 0, W),
            event: E::ProposalAndPolkaPrevious {
                round: r(2),
                value: V,
                valid: true,
                vr: r(1),
            },
            line: Some(28),
            to: locked(at(2, Prevote), 0, W),
            actions: vec![A::Prevote(Some(V))],
        },
        Row {
            name: "re-proposal whose polka is older than the lock on another value: nil (32)",
            from: locked(at(2, Propose), 1, W),
            event: E::ProposalAndPolkaPrevious {
                round: r(2),
                value: V,
                valid: true,
                vr: r(0),
            },
            line: Some(28),
            to: locked(at(2, Prevote), 1, W),
            actions: vec![A::Prevote(None)],
        },
        Row {
            name: "invalid re-proposal: nil (32)",
            from: at(2, Propose),
            event: E::ProposalAndPolkaPrevious {
                round: r(2),
                value: V,
                valid: false,
                vr: r(1),
            },
            line: Some(28),
            to: at(2, Prevote),
            actions: vec![A::Prevote(None)],
        },
        none(
            "a validRound not below the round is no re-proposal",
            at(2, Propose),
            E::ProposalAndPolkaPrevious {
                round: r(2),
                value: V,
                valid: true,
                vr: r(2),
            },
        ),
        Row {
            name: "+2/3 prevotes of any values: timeoutPrevote (35)",
            from: at(0, Prevote),
            event: E::PolkaAny { round: r(0) },
            line: Some(34),
            to: at(0, Prevote),
            actions: vec![A::Schedule(TimeoutKind::Prevote)],
        },
        none(
            "+2/3 prevotes of any values before prevoting: nothing yet",
            at(0, Propose),
            E::PolkaAny { round: r(0) },
        ),
        Row {
            name: "polka for the valid proposal while prevoting: lock, precommit (37-43)",
            from: at(0, Prevote),
            event: E::ProposalAndPolkaCurrent {
                round: r(0),
                value: V,
            },
            line: Some(36),
            to: locked(at(0, Precommit), 0, V),
            actions: vec![A::SaveValid { value: V }, A::Precommit(Some(V))],
        },
        Row {
            name: "polka for the valid proposal after precommitting: validValue only (42-43)",
            from: at(0, Precommit),
            event: E::ProposalAndPolkaCurrent {
                round: r(0),
                value: V,
            },
            line: Some(36),
            to: valid(at(0, Precommit), 0, V),
            actions: vec![A::SaveValid { value: V }],
        },
        none(
            "line 36 fires once per round",
            valid(at(0, Precommit), 0, V),
            E::ProposalAndPolkaCurrent {
                round: r(0),
                value: V,
            },
        ),
        none(
            "a polka before prevoting waits for the prevote",
            at(0, Propose),
            E::ProposalAndPolkaCurrent {
                round: r(0),
                value: V,
            },
        ),
        Row {
            name: "+2/3 prevotes for nil: precommit nil (45-46)",
            from: at(0, Prevote),
            event: E::PolkaNil { round: r(0) },
            line: Some(44),
            to: at(0, Precommit),
            actions: vec![A::Precommit(None)],
        },
        Row {
            name: "+2/3 precommits of any values: timeoutPrecommit (48)",
            from: at(0, Propose),
            event: E::PrecommitAny { round: r(0) },
            line: Some(47),
            to: at(0, Propose),
            actions: vec![A::Schedule(TimeoutKind::Precommit)],
        },
        none(
            "+2/3 precommits of another round start no timer",
            at(1, Precommit),
            E::PrecommitAny { round: r(0) },
        ),
        Row {
            name: "a valid value with +2/3 precommits, of any round: decide (50-54)",
            from: locked(at(2, Prevote), 1, W),
            event: E::ProposalAndPrecommitValue {
                round: r(0),
                value: V,
            },
            line: Some(49),
            to: locked(at(2, Commit), 1, W),
            actions: vec![A::Decide {
                round: r(0),
                value: V,
            }],
        },
        none(
            "a decided height decides nothing else",
            at(0, Commit),
            E::ProposalAndPrecommitValue {
                round: r(0),
                value: W,
            },
        ),
        Row {
            name: "f+1 messages from a later round: start it (56)",
            from: at(1, Precommit),
            event: E::SkipRound { round: r(3) },
            line: Some(55),
            to: at(1, Precommit),
            actions: vec![A::StartRound(r(3))],
        },
        none(
            "f+1 messages from this round skip nothing",
            at(1, Propose),
            E::SkipRound { round: r(1) },
        ),
        Row {
            name: "timeoutPropose in the propose step: prevote nil (59-60)",
            from: at(0, Propose),
            event: E::TimeoutPropose { round: r(0) },
            line: Some(57),
            to: at(0, Prevote),
            actions: vec![A::Prevote(None)],
        },
        none(
            "timeoutPropose after prevoting",
            at(0, Prevote),
            E::TimeoutPropose { round: r(0) },
        ),
        none(
            "timeoutPropose of an earlier round",
            at(1, Propose),
            E::TimeoutPropose { round: r(0) },
        ),
        Row {
            name: "timeoutPrevote in the prevote step: precommit nil (63-64)",
            from: at(0, Prevote),
            event: E::TimeoutPrevote { round: r(0) },
            line: Some(61),
            to: at(0, Precommit),
            actions: vec![A::Precommit(None)],
        },
        Row {
            name: "timeoutPrecommit: the next round (67)",
            from: at(0, Precommit),
            event: E::TimeoutPrecommit { round: r(0) },
            line: Some(65),
            to: at(0, Precommit),
            actions: vec![A::StartRound(r(1))],
        },
        none(
            "the last round number has no next round",
            at(u32::MAX, Precommit),
            E::TimeoutPrecommit { round: r(u32::MAX) },
        ),
        none(
            "before the height starts, no rule runs",
            at(0, Unstarted),
            E::TimeoutPrecommit { round: r(0) },
        ),
        none(
            "after the decision, no timer runs",
            at(0, Commit),
            E::TimeoutPrecommit { round: r(0) },
        ),
    ]
}

#[test]
fn every_row_of_the_table() {
    let mut failures = Vec::new();
    for row in rows() {
        let t = apply(row.from, row.event);
        let got = (t.line.map(|l| l.0), t.state, t.actions);
        let want = (row.line, row.to, row.actions);
        if got != want {
            failures.push(format!("{}:\n  got  {got:?}\n  want {want:?}", row.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Every rule of Algorithm 1 has a row that fires it.
#[test]
fn every_rule_has_a_row() {
    let fired: BTreeSet<u16> = rows().iter().filter_map(|r| r.line).collect();
    let rules = [11, 18, 22, 28, 34, 36, 44, 47, 49, 55, 57, 61, 65];
    let missing: Vec<u16> = rules.into_iter().filter(|l| !fired.contains(l)).collect();
    assert!(missing.is_empty(), "no row fires line(s) {missing:?}");
}
