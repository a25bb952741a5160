//! Table-driven transitions of Algorithm 1 ("The latest gossip on BFT
//! consensus", arXiv:1807.04938). Each row names the line(s) of the paper it
//! covers, the inputs fed to one node of a 4-validator set (equal power:
//! quorum 3, f+1 = 2), what must come out, and which lines the node's trace
//! says fired. `transitions.rs` tests the pure table itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use palisade_consensus::{
    proposer, Config, Consensus, Input, Message, Output, SignedMessage, SignerState, StepState,
    Timeout, TimeoutConfig, TimeoutKind, Verified,
};
use palisade_types::{
    Block, BlockHeader, BoundedVec, ChainId, CommitCertificate, CommitSig, Hash, Height, Keypair,
    Proposal, Round, SignedVote, Timestamp, Validator, ValidatorSet, Vote, VoteType,
};

use VoteType::{Precommit, Prevote};

/// Which validator the node under test is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Me {
    /// The proposer of height 1, round 0.
    Proposer,
    /// Not the proposer of rounds 0, 1 or 2.
    Other,
}

#[derive(Debug, Clone)]
enum Act {
    /// Signed proposal of block `block` from the round's rightful proposer.
    Proposal {
        round: u32,
        block: u8,
        pol: Option<u32>,
    },
    /// The same, signed by a validator that is not the round's proposer.
    ProposalFromWrongValidator {
        round: u32,
        block: u8,
    },
    Validated {
        block: u8,
        valid: bool,
    },
    /// Votes from the other validators listed (0..3 index the others).
    Votes {
        t: VoteType,
        round: u32,
        value: Option<u8>,
        from: &'static [usize],
    },
    /// A vote with a corrupted signature.
    BadVote {
        t: VoteType,
        round: u32,
        value: Option<u8>,
        from: usize,
    },
    Timeout(TimeoutKind, u32),
    OwnBlock {
        round: u32,
        block: u8,
    },
}

#[derive(Debug, Default)]
struct Expect {
    step: Option<StepState>,
    round: Option<u32>,
    locked: Option<Option<(u32, u8)>>,
    valid: Option<Option<(u32, u8)>>,
    /// Votes signed by the last input, exactly.
    signed: Option<Vec<(VoteType, u32, Option<u8>)>>,
    /// Proposal signed by the last input: (round, block, pol).
    proposed: Option<(u32, u8, Option<u32>)>,
    /// Decision by the last input (`Some(None)`: must not decide).
    decided: Option<Option<u8>>,
    /// Timeouts the last input must schedule.
    scheduled: Vec<TimeoutKind>,
    requests_block: Option<bool>,
    validates: Option<Option<u8>>,
    evidence: Option<bool>,
}

struct Case {
    line: &'static str,
    name: &'static str,
    /// The lines the last act fires, in order: the transition table's trace.
    fires: &'static [u16],
    me: Me,
    acts: Vec<Act>,
    expect: Expect,
}

struct Harness {
    chain: ChainId,
    keys: Vec<Keypair>,
    set: ValidatorSet,
    me: usize,
    c: Consensus,
    last: Vec<Output>,
    /// Lines of Algorithm 1 the last act fired, in order.
    fired: Vec<u16>,
}

const N: usize = 4;

impl Harness {
    fn new(me: Me) -> Harness {
        let chain = ChainId::new("steps").unwrap();
        let mut keys: Vec<Keypair> = (1..=N as u8).map(|i| Keypair::from_seed([i; 32])).collect();
        keys.sort_by_key(|k| k.public_key());
        let set = ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    public_key: k.public_key(),
                    power: 1,
                })
                .collect(),
        )
        .unwrap();
        let idx = |round: u32| {
            let p = proposer(&set, Height(1), Round(round));
            keys.iter().position(|k| k.public_key() == p).unwrap()
        };
        let me = match me {
            Me::Proposer => idx(0),
            Me::Other => (0..N)
                .find(|i| ![idx(0), idx(1), idx(2)].contains(i))
                .unwrap(),
        };
        let config = Config {
            chain_id: chain.clone(),
            timeouts: TimeoutConfig::default(),
        };
        let mut c = Consensus::new(config, Some(keys[me].clone()), SignerState::default());
        let last = c.handle(Input::StartHeight {
            height: Height(1),
            validators: set.clone(),
            restored_blocks: Vec::new(),
        });
        let fired = c.trace().iter().map(|f| f.line.0).collect();
        Harness {
            chain,
            keys,
            set,
            me,
            c,
            last,
            fired,
        }
    }

    fn others(&self) -> Vec<usize> {
        (0..N).filter(|&i| i != self.me).collect()
    }

    fn proposer_index(&self, round: u32) -> usize {
        let p = proposer(&self.set, Height(1), Round(round));
        self.keys.iter().position(|k| k.public_key() == p).unwrap()
    }

    fn block(&self, id: u8) -> Arc<Block> {
        Arc::new(Block {
            eth_txs: Default::default(),
            header: BlockHeader {
                chain_id: self.chain.clone(),
                height: Height(1),
                time: Timestamp(u64::from(id)),
                last_block_hash: Hash::ZERO,
                tx_root: Block::compute_tx_root(&[], &[]),
                state_root: Hash::ZERO,
                receipts_root: Hash::ZERO,
                validators_hash: self.set.hash(),
                next_validators_hash: self.set.hash(),
                proposer: self.keys[0].public_key(),
                last_commit_hash: Hash::ZERO,
            },
            txs: BoundedVec::default(),
            last_commit: None,
        })
    }

    fn hash(&self, id: u8) -> Hash {
        self.block(id).hash()
    }

    fn signed_vote(&self, who: usize, t: VoteType, round: u32, value: Option<u8>) -> SignedVote {
        Vote {
            vote_type: t,
            height: Height(1),
            round: Round(round),
            block_hash: value.map(|b| self.hash(b)),
            validator: self.keys[who].public_key(),
        }
        .sign(&self.chain, &self.keys[who])
    }

    /// A vote as the network edge hands it over, checked.
    fn vote(&self, who: usize, t: VoteType, round: u32, value: Option<u8>) -> Input {
        let v = self.signed_vote(who, t, round, value);
        Input::Vote(Verified::vote(&self.chain, v).unwrap())
    }

    fn proposal(&self, signer: usize, round: u32, block: u8, pol: Option<u32>) -> Input {
        let b = self.block(block);
        let m = Message::Proposal {
            proposal: Proposal {
                height: Height(1),
                round: Round(round),
                block_hash: b.hash(),
                pol_round: pol.map(Round),
                proposer: self.keys[signer].public_key(),
            }
            .sign(&self.chain, &self.keys[signer]),
            block: b,
        };
        Verified::check(&self.chain, m).unwrap().into_input()
    }

    fn apply(&mut self, act: &Act) {
        let others = self.others();
        let inputs: Vec<Input> = match *act {
            Act::Proposal { round, block, pol } => {
                vec![self.proposal(self.proposer_index(round), round, block, pol)]
            }
            Act::ProposalFromWrongValidator { round, block } => {
                let wrong = (0..N)
                    .find(|&i| i != self.proposer_index(round) && i != self.me)
                    .unwrap();
                vec![self.proposal(wrong, round, block, None)]
            }
            Act::Validated { block, valid } => vec![Input::BlockValidated {
                height: Height(1),
                block_hash: self.hash(block),
                valid,
            }],
            Act::Votes {
                t,
                round,
                value,
                from,
            } => from
                .iter()
                .map(|&o| self.vote(others[o], t, round, value))
                .collect(),
            Act::BadVote {
                t,
                round,
                value,
                from,
            } => {
                // The edge refuses it: nothing reaches the state machine.
                let mut v = self.signed_vote(others[from], t, round, value);
                v.signature.0[10] ^= 1;
                assert!(Verified::vote(&self.chain, v).is_err());
                vec![]
            }
            Act::Timeout(kind, round) => vec![Input::Timeout(Timeout {
                kind,
                height: Height(1),
                round: Round(round),
            })],
            Act::OwnBlock { round, block } => vec![Input::ProposeBlock {
                height: Height(1),
                round: Round(round),
                block: self.block(block),
            }],
        };
        self.last.clear();
        self.fired.clear();
        for i in inputs {
            let out = self.c.handle(i);
            self.last.extend(out);
            self.fired.extend(self.c.trace().iter().map(|f| f.line.0));
        }
    }

    fn id_of(&self, hash: Hash) -> u8 {
        (0..=255u8).find(|&b| self.hash(b) == hash).unwrap()
    }

    fn signed_votes(&self) -> Vec<(VoteType, u32, Option<u8>)> {
        self.last
            .iter()
            .filter_map(|o| match o {
                Output::PersistAndBroadcast {
                    message: Message::Vote(v),
                    ..
                } => Some((
                    v.vote.vote_type,
                    v.vote.round.get(),
                    v.vote.block_hash.map(|h| self.id_of(h)),
                )),
                _ => None,
            })
            .collect()
    }
}

fn cases() -> Vec<Case> {
    use Act::*;
    use TimeoutKind as T;
    let lock_on_1_in_round_0 = || {
        vec![
            Proposal {
                round: 0,
                block: 1,
                pol: None,
            },
            Validated {
                block: 1,
                valid: true,
            },
            Votes {
                t: Prevote,
                round: 0,
                value: Some(1),
                from: &[0, 1],
            },
        ]
    };
    let to_round = |from: u32| {
        vec![
            Timeout(T::Propose, from),
            Timeout(T::Prevote, from),
            Timeout(T::Precommit, from),
        ]
    };
    let cat = |parts: Vec<Vec<Act>>| parts.into_iter().flatten().collect::<Vec<_>>();
    vec![
        Case {
            line: "11-14",
            name: "proposer asks for a block when its round starts",
            fires: &[11],
            me: Me::Proposer,
            acts: vec![],
            expect: Expect {
                step: Some(StepState::Propose),
                requests_block: Some(true),
                scheduled: vec![T::Propose],
                ..Expect::default()
            },
        },
        Case {
            line: "18-19, 22-24",
            name: "proposer proposes the block it is given and prevotes it",
            fires: &[18, 22],
            me: Me::Proposer,
            acts: vec![OwnBlock { round: 0, block: 1 }],
            expect: Expect {
                proposed: Some((0, 1, None)),
                signed: Some(vec![(Prevote, 0, Some(1))]),
                step: Some(StepState::Prevote),
                ..Expect::default()
            },
        },
        Case {
            line: "15-16",
            name: "proposer re-proposes validValue with validRound",
            fires: &[65, 11, 28],
            me: Me::Other,
            acts: cat(vec![
                // Round 0: polka for block 1 (valid, locked), then move to
                // round 3 where this node is the proposer.
                lock_on_1_in_round_0(),
                vec![Timeout(T::Precommit, 0)],
                to_round(1),
                to_round(2),
            ]),
            expect: Expect {
                round: Some(3),
                proposed: Some((3, 1, Some(0))),
                requests_block: Some(false),
                ..Expect::default()
            },
        },
        Case {
            line: "20-21",
            name: "non-proposer schedules timeoutPropose and waits",
            fires: &[11],
            me: Me::Other,
            acts: vec![],
            expect: Expect {
                requests_block: Some(false),
                scheduled: vec![T::Propose],
                step: Some(StepState::Propose),
                ..Expect::default()
            },
        },
        Case {
            line: "22",
            name: "a proposal is validated before it is voted on",
            fires: &[],
            me: Me::Other,
            acts: vec![Proposal {
                round: 0,
                block: 1,
                pol: None,
            }],
            expect: Expect {
                validates: Some(Some(1)),
                signed: Some(vec![]),
                step: Some(StepState::Propose),
                ..Expect::default()
            },
        },
        Case {
            line: "22-24",
            name: "valid proposal, not locked: prevote it",
            fires: &[22],
            me: Me::Other,
            acts: vec![
                Proposal {
                    round: 0,
                    block: 1,
                    pol: None,
                },
                Validated {
                    block: 1,
                    valid: true,
                },
            ],
            expect: Expect {
                signed: Some(vec![(Prevote, 0, Some(1))]),
                step: Some(StepState::Prevote),
                ..Expect::default()
            },
        },
        Case {
            line: "22, 25-26",
            name: "invalid proposal: prevote nil",
            fires: &[22],
            me: Me::Other,
            acts: vec![
                Proposal {
                    round: 0,
                    block: 1,
                    pol: None,
                },
                Validated {
                    block: 1,
                    valid: false,
                },
            ],
            expect: Expect {
                signed: Some(vec![(Prevote, 0, None)]),
                step: Some(StepState::Prevote),
                ..Expect::default()
            },
        },
        Case {
            line: "22, 25-26",
            name: "locked on another block: prevote nil",
            fires: &[22],
            me: Me::Other,
            acts: cat(vec![
                lock_on_1_in_round_0(),
                vec![
                    Timeout(T::Precommit, 0),
                    Proposal {
                        round: 1,
                        block: 2,
                        pol: None,
                    },
                    Validated {
                        block: 2,
                        valid: true,
                    },
                ],
            ]),
            expect: Expect {
                signed: Some(vec![(Prevote, 1, None)]),
                locked: Some(Some((0, 1))),
                ..Expect::default()
            },
        },
        Case {
            line: "22-24",
            name: "locked on the proposed block: prevote it",
            fires: &[22],
            me: Me::Other,
            acts: cat(vec![
                lock_on_1_in_round_0(),
                // Block 1 was validated in round 0: no second validation.
                vec![
                    Timeout(T::Precommit, 0),
                    Proposal {
                        round: 1,
                        block: 1,
                        pol: None,
                    },
                ],
            ]),
            expect: Expect {
                signed: Some(vec![(Prevote, 1, Some(1))]),
                validates: Some(None),
                ..Expect::default()
            },
        },
        Case {
            line: "28-30",
            name: "re-proposal with a polka at validRound >= lockedRound: prevote it",
            fires: &[28],
            me: Me::Other,
            acts: cat(vec![
                lock_on_1_in_round_0(),
                vec![
                    Timeout(T::Precommit, 0),
                    // Round 1: no proposal here, but a polka for block 2.
                    Timeout(T::Propose, 1),
                    Votes {
                        t: Prevote,
                        round: 1,
                        value: Some(2),
                        from: &[0, 1, 2],
                    },
                    Timeout(T::Prevote, 1),
                    Timeout(T::Precommit, 1),
                    Proposal {
                        round: 2,
                        block: 2,
                        pol: Some(1),
                    },
                    Validated {
                        block: 2,
                        valid: true,
                    },
                ],
            ]),
            expect: Expect {
                signed: Some(vec![(Prevote, 2, Some(2))]),
                step: Some(StepState::Prevote),
                ..Expect::default()
            },
        },
        Case {
            line: "28, 31-32",
            name: "re-proposal with a polka older than the lock on another block: prevote nil",
            fires: &[28],
            me: Me::Other,
            acts: cat(vec![vec![
                // Round 0: a polka for block 2 that this node did not join.
                Timeout(T::Propose, 0),
                Votes {
                    t: Prevote,
                    round: 0,
                    value: Some(2),
                    from: &[0, 1, 2],
                },
                Timeout(T::Prevote, 0),
                Timeout(T::Precommit, 0),
                // Round 1: lock on block 1.
                Proposal {
                    round: 1,
                    block: 1,
                    pol: None,
                },
                Validated {
                    block: 1,
                    valid: true,
                },
                Votes {
                    t: Prevote,
                    round: 1,
                    value: Some(1),
                    from: &[0, 1],
                },
                Timeout(T::Precommit, 1),
                Proposal {
                    round: 2,
                    block: 2,
                    pol: Some(0),
                },
                Validated {
                    block: 2,
                    valid: true,
                },
            ]]),
            expect: Expect {
                signed: Some(vec![(Prevote, 2, None)]),
                locked: Some(Some((1, 1))),
                ..Expect::default()
            },
        },
        Case {
            line: "28",
            name: "re-proposal without its polka: wait",
            fires: &[],
            me: Me::Other,
            acts: cat(vec![
                to_round(0),
                vec![
                    Proposal {
                        round: 1,
                        block: 2,
                        pol: Some(0),
                    },
                    Validated {
                        block: 2,
                        valid: true,
                    },
                ],
            ]),
            expect: Expect {
                signed: Some(vec![]),
                step: Some(StepState::Propose),
                round: Some(1),
                ..Expect::default()
            },
        },
        Case {
            line: "34-35",
            name: "+2/3 prevotes for mixed values schedule timeoutPrevote",
            fires: &[34],
            me: Me::Other,
            acts: vec![
                Proposal {
                    round: 0,
                    block: 1,
                    pol: None,
                },
                Validated {
                    block: 1,
                    valid: true,
                },
                Votes {
                    t: Prevote,
                    round: 0,
                    value: None,
                    from: &[0],
                },
                Votes {
                    t: Prevote,
                    round: 0,
                    value: Some(2),
                    from: &[1],
                },
            ],
            expect: Expect {
                scheduled: vec![T::Prevote],
                signed: Some(vec![]),
                step: Some(StepState::Prevote),
                ..Expect::default()
            },
        },
        Case {
            line: "36-43",
            name: "polka for a valid proposal in the prevote step: lock and precommit",
            fires: &[36],
            me: Me::Other,
            acts: lock_on_1_in_round_0(),
            expect: Expect {
                signed: Some(vec![(Precommit, 0, Some(1))]),
                locked: Some(Some((0, 1))),
                valid: Some(Some((0, 1))),
                step: Some(StepState::Precommit),
                ..Expect::default()
            },
        },
        Case {
            line: "36, 42-43",
            name: "polka seen after precommitting nil: update validValue only",
            fires: &[36],
            me: Me::Other,
            acts: vec![
                Timeout(T::Propose, 0),
                Votes {
                    t: Prevote,
                    round: 0,
                    value: Some(1),
                    from: &[0, 1],
                },
                Timeout(T::Prevote, 0),
                Proposal {
                    round: 0,
                    block: 1,
                    pol: None,
                },
                Validated {
                    block: 1,
                    valid: true,
                },
                Votes {
                    t: Prevote,
                    round: 0,
                    value: Some(1),
                    from: &[2],
                },
            ],
            expect: Expect {
                signed: Some(vec![]),
                locked: Some(None),
                valid: Some(Some((0, 1))),
                step: Some(StepState::Precommit),
                ..Expect::default()
            },
        },
        Case {
            line: "44-46",
            name: "+2/3 prevotes for nil: precommit nil",
            fires: &[44],
            me: Me::Other,
            acts: vec![
                Timeout(T::Propose, 0),
                Votes {
                    t: Prevote,
                    round: 0,
                    value: None,
                    from: &[0, 1],
                },
            ],
            expect: Expect {
                signed: Some(vec![(Precommit, 0, None)]),
                step: Some(StepState::Precommit),
                locked: Some(None),
                ..Expect::default()
            },
        },
        Case {
            line: "47-48",
            name: "+2/3 precommits for mixed values schedule timeoutPrecommit",
            fires: &[47],
            me: Me::Other,
            acts: vec![
                Votes {
                    t: Precommit,
                    round: 0,
                    value: None,
                    from: &[0],
                },
                Votes {
                    t: Precommit,
                    round: 0,
                    value: Some(1),
                    from: &[1, 2],
                },
            ],
            expect: Expect {
                scheduled: vec![T::Precommit],
                decided: Some(None),
                ..Expect::default()
            },
        },
        Case {
            line: "49-54",
            name: "+2/3 precommits for a valid proposal: decide",
            fires: &[49],
            me: Me::Other,
            acts: vec![
                Proposal {
                    round: 0,
                    block: 1,
                    pol: None,
                },
                Validated {
                    block: 1,
                    valid: true,
                },
                Votes {
                    t: Precommit,
                    round: 0,
                    value: Some(1),
                    from: &[0, 1, 2],
                },
            ],
            expect: Expect {
                decided: Some(Some(1)),
                ..Expect::default()
            },
        },
        Case {
            line: "49-54",
            name: "decide a block committed in an earlier round",
            fires: &[49],
            me: Me::Other,
            acts: vec![
                Proposal {
                    round: 0,
                    block: 1,
                    pol: None,
                },
                Validated {
                    block: 1,
                    valid: true,
                },
                Timeout(T::Prevote, 0),
                Timeout(T::Precommit, 0),
                Votes {
                    t: Precommit,
                    round: 0,
                    value: Some(1),
                    from: &[0, 1, 2],
                },
            ],
            expect: Expect {
                decided: Some(Some(1)),
                round: Some(1),
                ..Expect::default()
            },
        },
        Case {
            line: "49",
            name: "never decide an invalid block",
            fires: &[47],
            me: Me::Other,
            acts: vec![
                Proposal {
                    round: 0,
                    block: 1,
                    pol: None,
                },
                Validated {
                    block: 1,
                    valid: false,
                },
                Votes {
                    t: Precommit,
                    round: 0,
                    value: Some(1),
                    from: &[0, 1, 2],
                },
            ],
            expect: Expect {
                decided: Some(None),
                ..Expect::default()
            },
        },
        Case {
            line: "49",
            name: "precommits without the block: no decision",
            fires: &[47],
            me: Me::Other,
            acts: vec![Votes {
                t: Precommit,
                round: 0,
                value: Some(1),
                from: &[0, 1, 2],
            }],
            expect: Expect {
                decided: Some(None),
                ..Expect::default()
            },
        },
        Case {
            line: "55-56",
            name: "f+1 messages from a later round: skip to it",
            fires: &[55, 11],
            me: Me::Other,
            acts: vec![Votes {
                t: Prevote,
                round: 3,
                value: None,
                from: &[0, 1],
            }],
            expect: Expect {
                round: Some(3),
                step: Some(StepState::Propose),
                ..Expect::default()
            },
        },
        Case {
            line: "55",
            name: "f messages from a later round: stay",
            fires: &[],
            me: Me::Other,
            acts: vec![Votes {
                t: Prevote,
                round: 3,
                value: None,
                from: &[0],
            }],
            expect: Expect {
                round: Some(0),
                ..Expect::default()
            },
        },
        Case {
            line: "55",
            name: "one validator's votes for an absurd round move nobody",
            fires: &[],
            me: Me::Other,
            acts: vec![Votes {
                t: Prevote,
                round: u32::MAX,
                value: None,
                from: &[0],
            }],
            expect: Expect {
                round: Some(0),
                ..Expect::default()
            },
        },
        Case {
            line: "55",
            name: "f+1 validators far ahead (beyond the stored window) still pull us",
            fires: &[55, 11],
            me: Me::Other,
            acts: vec![
                Votes {
                    t: Prevote,
                    round: 1_000,
                    value: None,
                    from: &[0],
                },
                Votes {
                    t: Precommit,
                    round: 900,
                    value: None,
                    from: &[1],
                },
            ],
            expect: Expect {
                round: Some(900),
                ..Expect::default()
            },
        },
        Case {
            line: "57-60",
            name: "timeoutPropose in the propose step: prevote nil",
            fires: &[57],
            me: Me::Other,
            acts: vec![Timeout(T::Propose, 0)],
            expect: Expect {
                signed: Some(vec![(Prevote, 0, None)]),
                step: Some(StepState::Prevote),
                ..Expect::default()
            },
        },
        Case {
            line: "57",
            name: "a stale timeoutPropose is ignored",
            fires: &[],
            me: Me::Other,
            acts: vec![Timeout(T::Propose, 1)],
            expect: Expect {
                signed: Some(vec![]),
                step: Some(StepState::Propose),
                ..Expect::default()
            },
        },
        Case {
            line: "61-64",
            name: "timeoutPrevote in the prevote step: precommit nil",
            fires: &[61],
            me: Me::Other,
            acts: vec![Timeout(T::Propose, 0), Timeout(T::Prevote, 0)],
            expect: Expect {
                signed: Some(vec![(Precommit, 0, None)]),
                step: Some(StepState::Precommit),
                ..Expect::default()
            },
        },
        Case {
            line: "65-67",
            name: "timeoutPrecommit: start the next round",
            fires: &[65, 11],
            me: Me::Other,
            acts: vec![Timeout(T::Precommit, 0)],
            expect: Expect {
                round: Some(1),
                step: Some(StepState::Propose),
                scheduled: vec![T::Propose],
                ..Expect::default()
            },
        },
        Case {
            line: "(evidence)",
            name: "two prevotes of one validator for one round are evidence",
            fires: &[],
            me: Me::Other,
            acts: vec![
                Votes {
                    t: Prevote,
                    round: 0,
                    value: Some(1),
                    from: &[0],
                },
                Votes {
                    t: Prevote,
                    round: 0,
                    value: Some(2),
                    from: &[0],
                },
            ],
            expect: Expect {
                evidence: Some(true),
                ..Expect::default()
            },
        },
        Case {
            line: "22",
            name: "a proposal not from the round's proposer is ignored",
            fires: &[],
            me: Me::Other,
            acts: vec![ProposalFromWrongValidator { round: 0, block: 1 }],
            expect: Expect {
                validates: Some(None),
                step: Some(StepState::Propose),
                ..Expect::default()
            },
        },
        Case {
            line: "44",
            name: "a vote with a bad signature is not counted",
            fires: &[],
            me: Me::Other,
            acts: vec![
                Timeout(T::Propose, 0),
                Votes {
                    t: Prevote,
                    round: 0,
                    value: None,
                    from: &[0],
                },
                BadVote {
                    t: Prevote,
                    round: 0,
                    value: None,
                    from: 1,
                },
            ],
            expect: Expect {
                signed: Some(vec![]),
                step: Some(StepState::Prevote),
                ..Expect::default()
            },
        },
    ]
}

fn check(case: &Case) -> Result<(), String> {
    let mut h = Harness::new(case.me);
    for a in &case.acts {
        h.apply(a);
    }
    let e = &case.expect;
    let c = &h.c;
    let mut errs = Vec::new();
    if h.fired != case.fires {
        errs.push(format!(
            "fired lines {:?}, expected {:?}",
            h.fired, case.fires
        ));
    }
    if let Some(s) = e.step {
        if c.state() != s {
            errs.push(format!("step {:?}, expected {s:?}", c.state()));
        }
    }
    if let Some(r) = e.round {
        if c.round() != Round(r) {
            errs.push(format!("round {}, expected {r}", c.round()));
        }
    }
    let ids = |x: Option<(Round, Hash)>| x.map(|(r, hh)| (r.get(), h.id_of(hh)));
    if let Some(l) = e.locked {
        if ids(c.locked()) != l {
            errs.push(format!("locked {:?}, expected {l:?}", ids(c.locked())));
        }
    }
    if let Some(v) = e.valid {
        if ids(c.valid()) != v {
            errs.push(format!("valid {:?}, expected {v:?}", ids(c.valid())));
        }
    }
    if let Some(s) = &e.signed {
        let got = h.signed_votes();
        if &got != s {
            errs.push(format!("signed {got:?}, expected {s:?}"));
        }
    }
    if let Some((r, b, pol)) = e.proposed {
        let got: Vec<_> = h
            .last
            .iter()
            .filter_map(|o| match o {
                Output::PersistAndBroadcast {
                    message: Message::Proposal { proposal, .. },
                    ..
                } => {
                    let p = &proposal.proposal;
                    Some((
                        p.round.get(),
                        h.id_of(p.block_hash),
                        p.pol_round.map(Round::get),
                    ))
                }
                _ => None,
            })
            .collect();
        if got != vec![(r, b, pol)] {
            errs.push(format!("proposed {got:?}, expected {:?}", (r, b, pol)));
        }
    }
    if let Some(d) = e.decided {
        let got = h.last.iter().find_map(|o| match o {
            Output::Decided { block, commit, .. } => {
                assert!(
                    commit.verify(&h.chain, &h.set).is_ok(),
                    "{}: decided with a bad commit",
                    case.name
                );
                Some(h.id_of(block.hash()))
            }
            _ => None,
        });
        if got != d {
            errs.push(format!("decided {got:?}, expected {d:?}"));
        }
    }
    for kind in &e.scheduled {
        let found = h
            .last
            .iter()
            .any(|o| matches!(o, Output::ScheduleTimeout { timeout, .. } if timeout.kind == *kind));
        if !found {
            errs.push(format!("no {kind:?} timeout scheduled"));
        }
    }
    if let Some(want) = e.requests_block {
        let got = h
            .last
            .iter()
            .any(|o| matches!(o, Output::RequestBlock { .. }));
        if got != want {
            errs.push(format!("requests block: {got}, expected {want}"));
        }
    }
    if let Some(v) = e.validates {
        let got = h.last.iter().find_map(|o| match o {
            Output::ValidateBlock { block, .. } => Some(h.id_of(block.hash())),
            _ => None,
        });
        if got != v {
            errs.push(format!("validates {got:?}, expected {v:?}"));
        }
    }
    if let Some(want) = e.evidence {
        let got = h.last.iter().any(|o| matches!(o, Output::Evidence(_)));
        if got != want {
            errs.push(format!("evidence: {got}, expected {want}"));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "line {} — {}: {}",
            case.line,
            case.name,
            errs.join("; ")
        ))
    }
}

#[test]
fn algorithm_1_transitions() {
    let failures: Vec<String> = cases().iter().filter_map(|c| check(c).err()).collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Save before send: the signer state that goes out with a vote already
/// contains that vote, and a node restarted from it re-sends the same vote
/// instead of signing a different one.
#[test]
fn restart_resends_the_saved_vote_and_never_signs_another() {
    let mut h = Harness::new(Me::Other);
    h.apply(&Act::Proposal {
        round: 0,
        block: 1,
        pol: None,
    });
    h.apply(&Act::Validated {
        block: 1,
        valid: true,
    });
    let (state, sent) = h
        .last
        .iter()
        .find_map(|o| match o {
            Output::PersistAndBroadcast {
                signer_state,
                message: Message::Vote(v),
            } => Some((signer_state.clone(), v.clone())),
            _ => None,
        })
        .expect("prevote sent");
    assert!(state.signed.contains(&SignedMessage::Vote(sent.clone())));

    let config = Config {
        chain_id: h.chain.clone(),
        timeouts: TimeoutConfig::default(),
    };
    let mut c = Consensus::new(config, Some(h.keys[h.me].clone()), state);
    c.handle(Input::StartHeight {
        height: Height(1),
        validators: h.set.clone(),
        restored_blocks: Vec::new(),
    });
    // The proposal's block is now "invalid" (say the node lost it): a fresh
    // node would prevote nil; the restarted one must re-send its prevote.
    let Input::Proposal { proposal, block } = h.proposal(h.proposer_index(0), 0, 1, None) else {
        unreachable!()
    };
    c.handle(Input::Proposal { proposal, block });
    let out = c.handle(Input::BlockValidated {
        height: Height(1),
        block_hash: h.hash(1),
        valid: false,
    });
    let mut resent = false;
    for o in &out {
        match o {
            Output::Broadcast(Message::Vote(v)) => {
                assert_eq!(v, &sent);
                resent = true;
            }
            Output::PersistAndBroadcast {
                message: Message::Vote(v),
                ..
            } => {
                panic!("signed a new vote after restart: {v:?}")
            }
            _ => {}
        }
    }
    assert!(resent, "saved prevote not re-sent: {out:?}");
    // Nor a timeout-driven nil prevote later.
    let out = c.handle(Input::Timeout(Timeout {
        kind: TimeoutKind::Propose,
        height: Height(1),
        round: Round(0),
    }));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::PersistAndBroadcast { .. })));
}

/// A proposer that locked on its own block in the round it restarts in
/// (validRound = the resume round) re-sends the proposal it signed, with
/// the validRound it had (-1), never a new one naming validRound as its
/// own round; and it signs nothing new.
#[test]
fn restarted_proposer_resends_its_proposal_in_the_round_of_its_lock() {
    let mut h = Harness::new(Me::Proposer);
    h.apply(&Act::OwnBlock { round: 0, block: 1 });
    let proposed = h
        .last
        .iter()
        .find_map(|o| match o {
            Output::PersistAndBroadcast {
                message: Message::Proposal { proposal, .. },
                ..
            } => Some(proposal.clone()),
            _ => None,
        })
        .expect("proposal sent");
    h.apply(&Act::Votes {
        t: Prevote,
        round: 0,
        value: Some(1),
        from: &[0, 1],
    });
    assert_eq!(h.fired, vec![36], "locked and precommitted");
    let state = h.c.signer_state().clone();
    assert_eq!(state.valid, Some((Round(0), h.hash(1))));
    assert_eq!(state.round, Round(0));

    let config = Config {
        chain_id: h.chain.clone(),
        timeouts: TimeoutConfig::default(),
    };
    let mut c = Consensus::new(config, Some(h.keys[h.me].clone()), state);
    let out = c.handle(Input::StartHeight {
        height: Height(1),
        validators: h.set.clone(),
        restored_blocks: vec![h.block(1)],
    });
    let mut resent = false;
    for o in &out {
        match o {
            Output::Broadcast(Message::Proposal { proposal, .. }) => {
                assert_eq!(proposal, &proposed, "the saved proposal, as it was");
                resent = true;
            }
            Output::PersistAndBroadcast { message, .. } => {
                panic!("signed something new after restart: {message:?}")
            }
            _ => {}
        }
    }
    assert!(resent, "saved proposal not re-sent: {out:?}");
    assert_eq!(c.locked(), Some((Round(0), h.hash(1))));
    assert_eq!(c.round(), Round(0));
}

/// Catch-up: a valid commit certificate decides the height; one short of a
/// quorum does not.
#[test]
fn commit_certificate_decides_a_missed_height() {
    let h = Harness::new(Me::Other);
    let block = h.block(7);
    let sigs = |who: &[usize]| -> Vec<CommitSig> {
        who.iter()
            .map(|&i| {
                let v = h.signed_vote(i, Precommit, 2, Some(7));
                CommitSig {
                    validator: v.vote.validator,
                    signature: v.signature,
                }
            })
            .collect()
    };
    let others = h.others();
    let short =
        CommitCertificate::new(Height(1), Round(2), block.hash(), sigs(&others[..2])).unwrap();
    let full = CommitCertificate::new(Height(1), Round(2), block.hash(), sigs(&others)).unwrap();

    let mut c = h.c;
    let out = c.handle(Input::Commit {
        block: block.clone(),
        commit: short,
    });
    assert!(!out.iter().any(|o| matches!(o, Output::Decided { .. })));
    let out = c.handle(Input::Commit {
        block: block.clone(),
        commit: full.clone(),
    });
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Decided { commit, .. } if *commit == full)));
    assert!(c.is_decided());
    assert_eq!(c.state(), StepState::Commit);
}

/// Both ends of a height are states of their own: before the first height
/// starts, and once it is decided (above).
#[test]
fn a_node_is_unstarted_until_its_first_height_starts() {
    let h = Harness::new(Me::Other);
    assert_eq!(h.c.state(), StepState::Propose);
    let config = Config {
        chain_id: h.chain.clone(),
        timeouts: TimeoutConfig::default(),
    };
    let mut c = Consensus::new(config, None, SignerState::default());
    assert_eq!(c.state(), StepState::Unstarted);
    // A vote before the height starts changes nothing.
    c.handle(h.vote(h.others()[0], Prevote, 0, None));
    assert_eq!(c.state(), StepState::Unstarted);
}

/// A message for the next height is reported (we may be behind) and kept
/// until that height starts.
#[test]
fn next_height_messages_are_buffered() {
    let mut h = Harness::new(Me::Other);
    let other = h.others()[0];
    let vote = Vote {
        vote_type: Prevote,
        height: Height(2),
        round: Round(0),
        block_hash: None,
        validator: h.keys[other].public_key(),
    }
    .sign(&h.chain, &h.keys[other]);
    let out =
        h.c.handle(Input::Vote(Verified::vote(&h.chain, vote.clone()).unwrap()));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Behind { current, seen } if *current == Height(1) && *seen == Height(2))));
    h.c.handle(Input::StartHeight {
        height: Height(2),
        validators: h.set.clone(),
        restored_blocks: Vec::new(),
    });
    assert_eq!(
        h.c.votes().vote_of(Round(0), Prevote, &vote.vote.validator),
        Some(&vote)
    );
}

/// Every row of the table is distinct and names its paper line.
#[test]
fn table_covers_every_rule_of_algorithm_1() {
    let lines: Vec<&str> = cases().iter().map(|c| c.line).collect();
    let mut seen = BTreeMap::new();
    for want in [
        "11", "15", "18", "20", "22", "26", "28", "31", "34", "36", "42", "44", "47", "49", "55",
        "57", "61", "65",
    ] {
        let hit = lines.iter().any(|l| {
            l.split([',', ' ', '-'])
                .filter(|p| !p.is_empty())
                .any(|p| p == want)
        });
        seen.insert(want, hit);
    }
    let missing: Vec<_> = seen
        .iter()
        .filter(|(_, hit)| !**hit)
        .map(|(l, _)| *l)
        .collect();
    assert!(missing.is_empty(), "no row for line(s) {missing:?}");
}
