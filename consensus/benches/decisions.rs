//! Decisions per second of the bare state machine: one node receives a
//! proposal and the prevotes and precommits of every other validator and
//! decides. Signing happens in setup, outside the timed part; verifying
//! every signature at the edge ([`Verified::check`], as the node's network
//! layer does) is part of what is measured: each setup names a block of its
//! own, so no signature repeats and the memo of verified signatures never
//! answers for the verification. The `consensus_core` group checks the
//! signatures in setup, so it measures the state machine alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use palisade_consensus::{
    proposer, Config, Consensus, Input, Message, Output, SignerState, TimeoutConfig, Verified,
};
use palisade_types::{
    Block, BlockHeader, BoundedVec, ChainId, Hash, Height, Keypair, Proposal, Round, Timestamp,
    Validator, ValidatorSet, Vote, VoteType,
};

struct Setup {
    config: Config,
    me: Keypair,
    set: ValidatorSet,
    inputs: Vec<Fed>,
}

/// What the node is fed: a message off the network, or an input of its own.
enum Fed {
    Net(Message),
    Local(Input),
}

/// Makes every setup's block, and so every vote, different.
static NEXT_TIME: AtomicU64 = AtomicU64::new(1);

fn setup(n: usize) -> Setup {
    let chain = ChainId::new("bench").expect("valid");
    let keys: Vec<Keypair> = (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            Keypair::from_seed(seed)
        })
        .collect();
    let set = ValidatorSet::new(
        keys.iter()
            .map(|k| Validator {
                public_key: k.public_key(),
                power: 1,
            })
            .collect(),
    )
    .expect("valid set");
    let h = Height(1);
    let prop_key = proposer(&set, h, Round(0));
    let proposer_key = keys
        .iter()
        .find(|k| k.public_key() == prop_key)
        .expect("proposer is a member");
    let me = keys
        .iter()
        .find(|k| k.public_key() != prop_key)
        .expect("n >= 2")
        .clone();
    let block = Arc::new(Block {
        eth_txs: Default::default(),
        header: BlockHeader {
            chain_id: chain.clone(),
            height: h,
            time: Timestamp(NEXT_TIME.fetch_add(1, Ordering::Relaxed)),
            last_block_hash: Hash::ZERO,
            tx_root: Block::compute_tx_root(&[], &[]),
            state_root: Hash::ZERO,
            receipts_root: Hash::ZERO,
            validators_hash: set.hash(),
            next_validators_hash: set.hash(),
            proposer: prop_key,
            last_commit_hash: Hash::ZERO,
        },
        txs: BoundedVec::default(),
        last_commit: None,
    });
    let hash = block.hash();
    let mut inputs = vec![
        Fed::Net(Message::Proposal {
            proposal: Proposal {
                height: h,
                round: Round(0),
                block_hash: hash,
                pol_round: None,
                proposer: prop_key,
            }
            .sign(&chain, proposer_key),
            block,
        }),
        Fed::Local(Input::BlockValidated {
            height: h,
            block_hash: hash,
            valid: true,
        }),
    ];
    for t in [VoteType::Prevote, VoteType::Precommit] {
        for k in keys.iter().filter(|k| k.public_key() != me.public_key()) {
            inputs.push(Fed::Net(Message::Vote(
                Vote {
                    vote_type: t,
                    height: h,
                    round: Round(0),
                    block_hash: Some(hash),
                    validator: k.public_key(),
                }
                .sign(&chain, k),
            )));
        }
    }
    Setup {
        config: Config {
            chain_id: chain,
            timeouts: TimeoutConfig::default(),
        },
        me,
        set,
        inputs,
    }
}

fn decide(s: Setup) -> bool {
    let chain_id = s.config.chain_id.clone();
    let mut c = Consensus::new(s.config, Some(s.me), SignerState::default());
    c.handle(Input::StartHeight {
        height: Height(1),
        validators: s.set,
        restored_blocks: Vec::new(),
    });
    let mut decided = false;
    for fed in s.inputs {
        let input = match fed {
            Fed::Net(m) => match Verified::check(&chain_id, m) {
                Ok(v) => v.into_input(),
                Err(_) => continue,
            },
            Fed::Local(i) => i,
        };
        decided |= c
            .handle(input)
            .iter()
            .any(|o| matches!(o, Output::Decided { .. }));
        // Messages after the decision are not part of deciding (the state
        // machine drops them; before signatures were checked at the edge
        // it dropped them unverified, and the measurement stays the same).
        if decided {
            break;
        }
    }
    decided
}

/// The same inputs with every signature checked beforehand, outside the
/// timed part: what is left is the state machine's own work.
struct Checked {
    config: Config,
    me: Keypair,
    set: ValidatorSet,
    inputs: Vec<Input>,
}

fn check_all(s: Setup) -> Checked {
    let chain_id = s.config.chain_id.clone();
    let inputs = s
        .inputs
        .into_iter()
        .filter_map(|fed| match fed {
            Fed::Net(m) => Verified::check(&chain_id, m).ok().map(|v| v.into_input()),
            Fed::Local(i) => Some(i),
        })
        .collect();
    Checked {
        config: s.config,
        me: s.me,
        set: s.set,
        inputs,
    }
}

fn decide_checked(s: Checked) -> bool {
    let mut c = Consensus::new(s.config, Some(s.me), SignerState::default());
    c.handle(Input::StartHeight {
        height: Height(1),
        validators: s.set,
        restored_blocks: Vec::new(),
    });
    for input in s.inputs {
        if c.handle(input)
            .iter()
            .any(|o| matches!(o, Output::Decided { .. }))
        {
            return true;
        }
    }
    false
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("consensus_decision");
    for n in [4usize, 100] {
        assert!(decide(setup(n)), "setup must lead to a decision");
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{n}_validators"), |b| {
            b.iter_batched(|| setup(n), decide, BatchSize::SmallInput)
        });
    }
    g.finish();
    let mut g = c.benchmark_group("consensus_core");
    for n in [4usize, 100] {
        assert!(
            decide_checked(check_all(setup(n))),
            "setup must lead to a decision"
        );
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{n}_validators"), |b| {
            b.iter_batched(
                || check_all(setup(n)),
                decide_checked,
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
