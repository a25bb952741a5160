//! What a node at height 1 keeps of the messages for height 2: only what
//! members of its validator set signed, bounded per validator and in total,
//! lower rounds first (issue 26: an allowlisted peer signing with throwaway
//! keys used to fill the buffer and push honest next-height messages out).

use std::sync::Arc;

use palisade_consensus::{
    proposer, Config, Consensus, Input, Output, SignerState, TimeoutConfig, Verified,
    MAX_BUFFERED_PROPOSAL_BYTES, MAX_BUFFERED_VOTES, ROUND_WINDOW,
};
use palisade_types::{
    Action, Address, Block, BlockHeader, BoundedBytes, BoundedVec, ChainId, Hash, Height, Keypair,
    Proposal, Round, Signature, SignedTransaction, Timestamp, Transaction, Validator, ValidatorSet,
    Vote, VoteType,
};

struct Net {
    chain: ChainId,
    keys: Vec<Keypair>,
    set: ValidatorSet,
    /// The node under test, at height 1; it is `keys[0]`.
    c: Consensus,
}

impl Net {
    fn new(n: usize) -> Net {
        let chain = ChainId::new("future").unwrap();
        let mut keys: Vec<Keypair> = (0..n)
            .map(|i| {
                let mut seed = [7u8; 32];
                seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
                Keypair::from_seed(seed)
            })
            .collect();
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
        let config = Config {
            chain_id: chain.clone(),
            timeouts: TimeoutConfig::default(),
        };
        let mut c = Consensus::new(config, Some(keys[0].clone()), SignerState::default());
        c.handle(Input::StartHeight {
            height: Height(1),
            validators: set.clone(),
            restored_blocks: Vec::new(),
        });
        Net {
            chain,
            keys,
            set,
            c,
        }
    }

    fn vote(&self, key: &Keypair, t: VoteType, round: u32) -> Input {
        let v = Vote {
            vote_type: t,
            height: Height(2),
            round: Round(round),
            block_hash: None,
            validator: key.public_key(),
        }
        .sign(&self.chain, key);
        Input::Vote(Verified::vote(&self.chain, v).unwrap())
    }

    /// A height-2 block whose transactions take about `bytes`.
    fn block(&self, id: u64, bytes: usize) -> Arc<Block> {
        let value = vec![0xab; 60 * 1024];
        let txs = (0..bytes.div_ceil(value.len()))
            .map(|i| SignedTransaction {
                tx: Transaction {
                    chain_id: self.chain.clone(),
                    nonce: i as u64,
                    signer: Address([1; 32]),
                    action: Action::Put {
                        namespace: BoundedBytes::new(b"ns".to_vec()).unwrap(),
                        key: BoundedBytes::new(id.to_le_bytes().to_vec()).unwrap(),
                        value: BoundedBytes::new(value.clone()).unwrap(),
                    },
                },
                signature: Signature([0; 64]),
            })
            .collect();
        Arc::new(Block {
            eth_txs: Default::default(),
            header: BlockHeader {
                chain_id: self.chain.clone(),
                height: Height(2),
                time: Timestamp(id),
                last_block_hash: Hash::ZERO,
                tx_root: Hash::ZERO,
                state_root: Hash::ZERO,
                receipts_root: Hash::ZERO,
                validators_hash: self.set.hash(),
                next_validators_hash: self.set.hash(),
                proposer: self.keys[0].public_key(),
                last_commit_hash: Hash::ZERO,
            },
            txs: BoundedVec::new(txs).unwrap(),
            last_commit: None,
        })
    }

    fn proposal(&self, key: &Keypair, round: u32, block: Arc<Block>) -> Input {
        let p = Proposal {
            height: Height(2),
            round: Round(round),
            block_hash: block.hash(),
            pol_round: None,
            proposer: key.public_key(),
        }
        .sign(&self.chain, key);
        Input::Proposal {
            proposal: Verified::proposal(&self.chain, p, &block).unwrap(),
            block,
        }
    }

    fn proposer_key(&self, round: u32) -> &Keypair {
        let p = proposer(&self.set, Height(2), Round(round));
        self.keys.iter().find(|k| k.public_key() == p).unwrap()
    }

    fn start_height_2(&mut self) -> Vec<Output> {
        self.c.handle(Input::StartHeight {
            height: Height(2),
            validators: self.set.clone(),
            restored_blocks: Vec::new(),
        })
    }
}

fn throwaway(i: u64) -> Keypair {
    let mut seed = [0x55u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(seed)
}

/// Proposals and votes signed with keys outside the validator set are not
/// kept (nor reported as a sign of being behind), so the honest proposal
/// and votes that follow still count when height 2 starts.
#[test]
fn throwaway_keys_cannot_fill_the_buffer_or_push_out_honest_messages() {
    let mut net = Net::new(4);
    let small = net.block(0, 1);
    for i in 0..(MAX_BUFFERED_VOTES as u64 + 100) {
        let k = throwaway(i);
        let out = net
            .c
            .handle(net.proposal(&k, (i % 4) as u32, small.clone()));
        assert!(out.is_empty(), "a stranger's proposal caused {out:?}");
        net.c.handle(net.vote(&k, VoteType::Prevote, 0));
    }
    assert_eq!(net.c.buffered(), (0, 0));

    let honest = net.block(1, 1);
    let p = net.proposer_key(0).clone();
    net.c.handle(net.proposal(&p, 0, honest.clone()));
    let voters: Vec<Keypair> = net.keys[1..].to_vec();
    for k in &voters {
        net.c.handle(net.vote(k, VoteType::Prevote, 0));
    }
    let out = net.start_height_2();
    assert!(
        out.iter().any(
            |o| matches!(o, Output::ValidateBlock { block, .. } if block.hash() == honest.hash())
        ),
        "the honest proposal was not kept: {out:?}"
    );
    for k in &voters {
        assert!(
            net.c
                .votes()
                .vote_of(Round(0), VoteType::Prevote, &k.public_key())
                .is_some(),
            "an honest vote was not kept"
        );
    }
}

/// A member of the set fills only its own slots: two votes a round in the
/// round window, however many it signs.
#[test]
fn a_member_fills_only_its_own_vote_slots() {
    let mut net = Net::new(4);
    let k = net.keys[1].clone();
    for round in 0..1_000 {
        for t in [VoteType::Prevote, VoteType::Precommit] {
            net.c.handle(net.vote(&k, t, round));
            // The same slot again, for another value.
            let Input::Vote(v) = net.vote(&k, t, round) else {
                unreachable!()
            };
            let mut vote = v.into_inner().vote;
            vote.block_hash = Some(Hash([9; 32]));
            let v = vote.sign(&net.chain, &k);
            net.c
                .handle(Input::Vote(Verified::vote(&net.chain, v).unwrap()));
        }
    }
    assert_eq!(net.c.buffered().0, 2 * ROUND_WINDOW as usize);
}

/// With the vote buffer full of later rounds, round-0 votes still get in:
/// the highest rounds make way.
#[test]
fn later_rounds_make_way_for_round_zero() {
    // 300 validators x 32 slots > MAX_BUFFERED_VOTES.
    let mut net = Net::new(300);
    let members: Vec<Keypair> = net.keys[1..].to_vec();
    for round in (1..ROUND_WINDOW).rev() {
        for k in &members {
            for t in [VoteType::Prevote, VoteType::Precommit] {
                net.c.handle(net.vote(k, t, round));
            }
        }
    }
    assert_eq!(net.c.buffered().0, MAX_BUFFERED_VOTES);
    for k in &members {
        net.c.handle(net.vote(k, VoteType::Prevote, 0));
    }
    assert_eq!(net.c.buffered().0, MAX_BUFFERED_VOTES);
    net.start_height_2();
    for k in &members {
        assert!(net
            .c
            .votes()
            .vote_of(Round(0), VoteType::Prevote, &k.public_key())
            .is_some());
    }
}

/// Proposals are kept only from the round's proposer, one per round, and
/// within a byte budget that later rounds give up first.
#[test]
fn proposals_are_bounded_in_bytes_and_by_proposer() {
    let mut net = Net::new(4);
    // Not the proposer of round 0: refused.
    let p0 = net.proposer_key(0).clone();
    let wrong = net
        .keys
        .iter()
        .find(|k| k.public_key() != p0.public_key())
        .unwrap()
        .clone();
    net.c.handle(net.proposal(&wrong, 0, net.block(1, 1)));
    assert_eq!(net.c.buffered().0, 0);

    // Big blocks for rounds 15 down to 1 overflow the budget.
    let big = MAX_BUFFERED_PROPOSAL_BYTES / 5;
    for round in (1..ROUND_WINDOW).rev() {
        let k = net.proposer_key(round).clone();
        net.c
            .handle(net.proposal(&k, round, net.block(u64::from(round), big)));
        assert!(net.c.buffered().1 <= MAX_BUFFERED_PROPOSAL_BYTES);
    }
    let (count, bytes) = net.c.buffered();
    assert!(count < ROUND_WINDOW as usize - 1, "{count} proposals kept");
    assert!(bytes <= MAX_BUFFERED_PROPOSAL_BYTES);

    // Round 0's proposal still gets in.
    let honest = net.block(100, big);
    net.c.handle(net.proposal(&p0, 0, honest.clone()));
    assert!(net.c.buffered().1 <= MAX_BUFFERED_PROPOSAL_BYTES);
    let out = net.start_height_2();
    assert!(out.iter().any(
        |o| matches!(o, Output::ValidateBlock { block, .. } if block.hash() == honest.hash())
    ));
}

/// A kept vote counts at the next height only if its signer is in that
/// height's set: when the set changes between the heights, kept votes are
/// checked again (with the same set they were checked once, on arrival).
#[test]
fn kept_votes_are_checked_again_when_the_set_changes() {
    let mut net = Net::new(4);
    let leaving = net.keys[3].clone();
    let staying = net.keys[1].clone();
    for k in [&leaving, &staying] {
        net.c.handle(net.vote(k, VoteType::Prevote, 0));
    }
    assert_eq!(net.c.buffered().0, 2);
    let next = ValidatorSet::new(
        net.keys[..3]
            .iter()
            .map(|k| Validator {
                public_key: k.public_key(),
                power: 1,
            })
            .collect(),
    )
    .unwrap();
    net.c.handle(Input::StartHeight {
        height: Height(2),
        validators: next,
        restored_blocks: Vec::new(),
    });
    let votes = net.c.votes();
    assert!(votes
        .vote_of(Round(0), VoteType::Prevote, &staying.public_key())
        .is_some());
    assert!(votes
        .vote_of(Round(0), VoteType::Prevote, &leaving.public_key())
        .is_none());
}
