use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use palisade_types::{
    Block, CommitCertificate, Hash, Height, Keypair, Proposal, PublicKey, Round, SignedProposal,
    SignedVote, ValidatorSet, Vote, VoteType,
};

use crate::future::FutureBuffer;
use crate::message::MessageError;
use crate::signer::{step_of, LockState, SignCheck};
use crate::{
    proposer, Config, Evidence, Input, Message, Output, SignedMessage, SignerState, Step, Timeout,
    TimeoutKind, Verified, VoteKeeper, VoteOutcome,
};

/// Votes and proposals more than this many rounds ahead of ours are not
/// stored, only noted for the round-skip rule: a Byzantine validator cannot
/// make us keep state for millions of rounds.
pub const ROUND_WINDOW: u32 = 16;
/// Evidence items kept in memory (all are also emitted as outputs).
pub const MAX_EVIDENCE: usize = 1_024;
/// Bound on rule re-evaluations per input; every rule changes state
/// monotonically, so the fixpoint is reached long before this.
const MAX_RULE_PASSES: usize = 64;

/// One node's Tendermint state machine (Algorithm 1 of arXiv:1807.04938).
/// Feed it with [`Consensus::handle`].
#[derive(Debug)]
pub struct Consensus {
    config: Config,
    key: Option<Keypair>,
    me: Option<PublicKey>,
    signer: SignerState,

    /// Whether the height started, runs, or is decided.
    stage: Stage,
    height: Height,
    round: Round,
    step: Step,
    validators: Option<ValidatorSet>,
    /// lockedRound / lockedValue (by hash), validRound / validValue and
    /// the polka behind validValue.
    lock: LockState,

    proposals: BTreeMap<Round, SignedProposal>,
    blocks: BTreeMap<Hash, Arc<Block>>,
    validity: BTreeMap<Hash, bool>,
    validation_requested: BTreeSet<Hash>,
    votes: VoteKeeper,
    /// Highest round seen from each validator beyond the round window.
    far_rounds: BTreeMap<PublicKey, Round>,
    /// Lines 34 and 47 start their timer once per round.
    scheduled: BTreeSet<(Round, TimeoutKind)>,
    /// Line 36 fires once per round.
    line36_fired: BTreeSet<Round>,
    block_requested: Option<Round>,

    /// The next height's messages (see [`crate::future`]).
    future: FutureBuffer,
    behind_reported: Height,
    evidence: Vec<Evidence>,
}

/// Whether the current height started, runs, or is decided (the
/// round's step says where in a running height).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Unstarted,
    Running,
    Decided,
}

/// Algorithm 1's step within a height, with the two ends explicit: before
/// the first height starts, and once the height is decided (line 49)
/// until the next starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepState {
    Unstarted,
    Propose,
    Prevote,
    Precommit,
    Commit,
}

impl Consensus {
    /// A state machine that signs with `key` (`None` for an observer that
    /// follows consensus without voting), resuming from `signer_state` (the
    /// last persisted one, or the default for a brand-new key).
    pub fn new(config: Config, key: Option<Keypair>, signer_state: SignerState) -> Consensus {
        let me = key.as_ref().map(Keypair::public_key);
        Consensus {
            config,
            key,
            me,
            signer: signer_state,
            stage: Stage::Unstarted,
            height: Height::GENESIS,
            round: Round::ZERO,
            step: Step::Propose,
            validators: None,
            lock: LockState::default(),
            proposals: BTreeMap::new(),
            blocks: BTreeMap::new(),
            validity: BTreeMap::new(),
            validation_requested: BTreeSet::new(),
            votes: VoteKeeper::default(),
            far_rounds: BTreeMap::new(),
            scheduled: BTreeSet::new(),
            line36_fired: BTreeSet::new(),
            block_requested: None,
            future: FutureBuffer::default(),
            behind_reported: Height::GENESIS,
            evidence: Vec::new(),
        }
    }

    fn started(&self) -> bool {
        self.stage != Stage::Unstarted
    }

    pub fn height(&self) -> Height {
        self.height
    }
    pub fn round(&self) -> Round {
        self.round
    }
    pub fn step(&self) -> Step {
        self.step
    }
    pub fn is_decided(&self) -> bool {
        self.stage == Stage::Decided
    }
    /// Where the height stands, Algorithm 1's step with both ends explicit.
    pub fn state(&self) -> StepState {
        match self.stage {
            Stage::Unstarted => StepState::Unstarted,
            Stage::Decided => StepState::Commit,
            Stage::Running => match self.step {
                Step::Propose => StepState::Propose,
                Step::Prevote => StepState::Prevote,
                Step::Precommit => StepState::Precommit,
            },
        }
    }
    pub fn locked(&self) -> Option<(Round, Hash)> {
        self.lock.locked
    }
    pub fn valid(&self) -> Option<(Round, Hash)> {
        self.lock.valid
    }
    pub fn signer_state(&self) -> &SignerState {
        &self.signer
    }
    pub fn evidence(&self) -> &[Evidence] {
        &self.evidence
    }
    pub fn validators(&self) -> Option<&ValidatorSet> {
        self.validators.as_ref()
    }
    pub fn public_key(&self) -> Option<PublicKey> {
        self.me
    }
    pub fn votes(&self) -> &VoteKeeper {
        &self.votes
    }
    /// Messages kept for the next height: how many, and their bytes.
    pub fn buffered(&self) -> (usize, usize) {
        (self.future.len(), self.future.bytes())
    }

    /// Processes one input and returns what the node must do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::StartHeight {
                height,
                validators,
                restored_blocks,
            } => self.start_height(height, validators, restored_blocks, &mut out),
            Input::Proposal { proposal, block } => self.on_proposal(proposal, block, &mut out),
            Input::Vote(vote) => self.on_vote(vote, &mut out),
            Input::Timeout(t) => self.on_timeout(t, &mut out),
            Input::BlockValidated {
                height,
                block_hash,
                valid,
            } => {
                if self.started() && height == self.height {
                    self.validity.insert(block_hash, valid);
                }
            }
            Input::ProposeBlock {
                height,
                round,
                block,
            } => self.on_own_block(height, round, block, &mut out),
            Input::Commit { block, commit } => self.on_commit(block, commit, &mut out),
        }
        self.process(&mut out);
        out
    }

    /// Checks a proposal as line 22/28 need it: from this round's proposer,
    /// naming the block it carries, at the right height. Its signature was
    /// checked at the edge ([`Verified`]).
    pub fn check_proposal(
        validators: &ValidatorSet,
        sp: &SignedProposal,
        block: &Block,
    ) -> Result<(), MessageError> {
        let p = &sp.proposal;
        if validators.get(&p.proposer).is_none() {
            return Err(MessageError::UnknownValidator(p.proposer));
        }
        let expected = proposer(validators, p.height, p.round);
        if expected != p.proposer {
            return Err(MessageError::WrongProposer {
                got: p.proposer,
                expected,
            });
        }
        if let Some(pol) = p.pol_round {
            if pol >= p.round {
                return Err(MessageError::BadPolRound {
                    pol,
                    round: p.round,
                });
            }
        }
        let carried = block.hash();
        if carried != p.block_hash {
            return Err(MessageError::BlockHashMismatch {
                named: p.block_hash,
                carried,
            });
        }
        if block.height() != p.height {
            return Err(MessageError::BlockHeightMismatch {
                proposal: p.height,
                block: block.height(),
            });
        }
        Ok(())
    }

    /// Checks that a vote's signer is one of `validators`; its power. Its
    /// signature was checked at the edge ([`Verified`]).
    pub fn check_vote(validators: &ValidatorSet, sv: &SignedVote) -> Result<u64, MessageError> {
        let who = sv.vote.validator;
        validators
            .get(&who)
            .map(|(_, v)| v.power)
            .ok_or(MessageError::UnknownValidator(who))
    }

    // ---- inputs -------------------------------------------------------

    fn start_height(
        &mut self,
        height: Height,
        validators: ValidatorSet,
        restored_blocks: Vec<Arc<Block>>,
        out: &mut Vec<Output>,
    ) {
        if self.started() && height <= self.height {
            return;
        }
        // What was kept is for the height after the one we were at.
        let kept_for = self.started().then(|| self.height.next().ok()).flatten();
        let (kept_proposals, kept_votes) = self.future.drain();
        // Kept votes were verified against the set they came in under: if
        // the new height has that same set, they need no second check.
        let same_set = self.validators.as_ref() == Some(&validators);
        self.stage = Stage::Running;
        self.height = height;
        self.validators = Some(validators);
        self.lock = self.signer.lock_at(height);
        self.proposals.clear();
        self.blocks.clear();
        self.validity.clear();
        for block in restored_blocks {
            if block.height() == height {
                // Saved only after this node validated it.
                let hash = block.hash();
                self.validity.insert(hash, true);
                self.blocks.insert(hash, block);
            }
        }
        self.validation_requested.clear();
        self.votes = VoteKeeper::default();
        self.far_rounds.clear();
        self.scheduled.clear();
        self.line36_fired.clear();
        self.block_requested = None;
        // Report again if, after catching up one height, we are still behind.
        self.behind_reported = height;
        let resume = self.signer.resume_round(height);
        self.start_round(resume, out);
        // After a restart mid-height, our earlier votes still count and are
        // re-sent by the rebroadcast timer.
        let mine: Vec<SignedVote> = self
            .signer
            .votes_at(height)
            .chain(self.lock.polka.iter())
            .cloned()
            .collect();
        for v in mine {
            let power = self.power_of(&v.vote.validator);
            self.add_vote(v, power, out);
        }

        // Kept messages were checked at the edge before they were kept.
        if kept_for == Some(height) {
            for (proposal, block) in kept_proposals {
                self.on_proposal(Verified::trusted(proposal), block, out);
            }
            for v in kept_votes {
                if same_set {
                    if !self.votes.contains(&v) {
                        let power = self.power_of(&v.vote.validator);
                        self.add_vote(v, power, out);
                    }
                } else {
                    self.on_vote(Verified::trusted(v), out);
                }
            }
        }
    }

    /// A message for a later height: reported as a sign that we are behind
    /// and, if it is for the next height, kept (see [`crate::future`] for
    /// what is kept), but only when a member of the current set signed it.
    /// Before the first height starts there is no set to check against, so
    /// nothing is kept (peers re-send).
    fn buffer(&mut self, input: Input, height: Height, out: &mut Vec<Output>) {
        let Some(validators) = self.validators.as_ref().filter(|_| self.started()) else {
            return;
        };
        let next = self.height.next().ok();
        if next == Some(height) && self.future.holds(&input) {
            return;
        }
        let signer = match &input {
            Input::Proposal { proposal, .. } => proposal.proposal.proposer,
            Input::Vote(v) => v.vote.validator,
            _ => return,
        };
        if validators.get(&signer).is_none() {
            return;
        }
        if height > self.behind_reported {
            self.behind_reported = height;
            out.push(Output::Behind {
                current: self.height,
                seen: height,
            });
        }
        if next == Some(height) {
            // Refused ones are dropped; peers re-send what matters.
            let _ = match input {
                Input::Proposal { proposal, block } => {
                    self.future
                        .add_proposal(validators, height, proposal.into_inner(), block)
                }
                Input::Vote(v) => self.future.add_vote(height, v.into_inner()),
                _ => Ok(()),
            };
        }
    }

    fn on_proposal(
        &mut self,
        sp: Verified<SignedProposal>,
        block: Arc<Block>,
        out: &mut Vec<Output>,
    ) {
        let h = sp.proposal.height;
        if !self.started() || h > self.height {
            self.buffer(
                Input::Proposal {
                    proposal: sp,
                    block,
                },
                h,
                out,
            );
            return;
        }
        if h < self.height || self.is_decided() {
            return;
        }
        if self.proposals.get(&sp.proposal.round) == Some(&*sp) {
            return;
        }
        let Some(validators) = &self.validators else {
            return;
        };
        if Self::check_proposal(validators, &sp, &block).is_err() {
            return;
        }
        self.accept_proposal(sp.into_inner(), block, false, out);
    }

    fn accept_proposal(
        &mut self,
        sp: SignedProposal,
        block: Arc<Block>,
        own: bool,
        out: &mut Vec<Output>,
    ) {
        let r = sp.proposal.round;
        let who = sp.proposal.proposer;
        let power = self.power_of(&who);
        if self.is_far(r) {
            self.note_far(who, r);
            return;
        }
        if let Some(existing) = self.proposals.get(&r) {
            if existing.proposal != sp.proposal {
                let ev = Evidence::DuplicateProposal {
                    first: Box::new(existing.clone()),
                    second: Box::new(sp),
                };
                self.record_evidence(ev, out);
            }
            return;
        }
        self.votes.note_sender(r, who, power);
        let hash = sp.proposal.block_hash;
        self.proposals.insert(r, sp);
        self.blocks.entry(hash).or_insert_with(|| block.clone());
        if own {
            self.validity.insert(hash, true);
        } else {
            self.request_validation(hash, out);
        }
    }

    fn request_validation(&mut self, hash: Hash, out: &mut Vec<Output>) {
        if self.validity.contains_key(&hash) || !self.validation_requested.insert(hash) {
            return;
        }
        if let Some(block) = self.blocks.get(&hash) {
            out.push(Output::ValidateBlock {
                height: self.height,
                block: block.clone(),
            });
        }
    }

    fn on_vote(&mut self, sv: Verified<SignedVote>, out: &mut Vec<Output>) {
        let h = sv.vote.height;
        if !self.started() || h > self.height {
            self.buffer(Input::Vote(sv), h, out);
            return;
        }
        if h < self.height || self.is_decided() {
            return;
        }
        // Re-sent votes are common (rebroadcast, gossip duplicates): the very
        // same signed vote was already verified and counted.
        if self.votes.contains(&sv) {
            return;
        }
        let Some(validators) = &self.validators else {
            return;
        };
        let Ok(power) = Self::check_vote(validators, &sv) else {
            return;
        };
        self.add_vote(sv.into_inner(), power, out);
    }

    fn add_vote(&mut self, sv: SignedVote, power: u64, out: &mut Vec<Output>) {
        let r = sv.vote.round;
        if self.is_far(r) {
            self.note_far(sv.vote.validator, r);
            return;
        }
        if let VoteOutcome::Equivocation(ev) = self.votes.add(sv, power) {
            self.record_evidence(ev, out);
        }
    }

    fn on_timeout(&mut self, t: Timeout, out: &mut Vec<Output>) {
        if !self.started() || self.is_decided() || t.height != self.height || t.round != self.round
        {
            return;
        }
        match t.kind {
            // Line 57.
            TimeoutKind::Propose => {
                if self.step == Step::Propose {
                    self.vote(VoteType::Prevote, None, out);
                    self.step = Step::Prevote;
                }
            }
            // Line 61.
            TimeoutKind::Prevote => {
                if self.step == Step::Prevote {
                    self.vote(VoteType::Precommit, None, out);
                    self.step = Step::Precommit;
                }
            }
            // Line 65.
            TimeoutKind::Precommit => {
                if let Ok(next) = self.round.next() {
                    self.start_round(next, out);
                }
            }
            TimeoutKind::Rebroadcast => {
                self.rebroadcast(out);
                self.schedule(TimeoutKind::Rebroadcast, out);
            }
        }
    }

    fn on_own_block(
        &mut self,
        height: Height,
        round: Round,
        block: Arc<Block>,
        out: &mut Vec<Output>,
    ) {
        if !self.started()
            || self.is_decided()
            || height != self.height
            || round != self.round
            || self.step != Step::Propose
            || self.block_requested != Some(round)
            || block.height() != height
        {
            return;
        }
        self.block_requested = None;
        self.propose(block, None, out);
    }

    fn on_commit(&mut self, block: Arc<Block>, commit: CommitCertificate, out: &mut Vec<Output>) {
        if !self.started() || self.is_decided() || commit.height != self.height {
            return;
        }
        if block.height() != self.height || block.hash() != commit.block_hash {
            return;
        }
        let Some(validators) = &self.validators else {
            return;
        };
        if commit.verify(&self.config.chain_id, validators).is_err() {
            return;
        }
        self.stage = Stage::Decided;
        out.push(Output::Decided {
            height: self.height,
            round: commit.round,
            block,
            commit,
        });
    }

    // ---- the rules of Algorithm 1 --------------------------------------

    fn process(&mut self, out: &mut Vec<Output>) {
        for _ in 0..MAX_RULE_PASSES {
            if !self.started() || self.is_decided() {
                return;
            }
            if self.try_decide(out) {
                return;
            }
            if self.try_round_skip(out) {
                continue;
            }
            let a = self.try_propose_step_rules(out);
            let b = self.try_prevote_step_rules(out);
            let c = self.try_precommit_timeout(out);
            if !(a || b || c) {
                return;
            }
        }
    }

    /// Line 11: StartRound.
    fn start_round(&mut self, round: Round, out: &mut Vec<Output>) {
        self.round = round;
        self.step = Step::Propose;
        self.block_requested = None;
        // Scheduled for the proposer too: if its own block never arrives
        // the round still moves on.
        self.schedule(TimeoutKind::Propose, out);
        self.schedule(TimeoutKind::Rebroadcast, out);
        let Some(validators) = &self.validators else {
            return;
        };
        let Some(me) = self.me else { return };
        if proposer(validators, self.height, round) != me {
            return;
        }
        // Line 15-19: re-propose validValue with validRound, else ask for a new block.
        let valid_block = self
            .lock
            .valid
            .and_then(|(vr, hash)| self.blocks.get(&hash).map(|b| (vr, b.clone())));
        match valid_block {
            Some((vr, block)) => self.propose(block, Some(vr), out),
            None => {
                self.block_requested = Some(round);
                out.push(Output::RequestBlock {
                    height: self.height,
                    round,
                    proposer: me,
                });
            }
        }
    }

    /// Line 49: +2/3 precommits for a valid block we hold decide it.
    fn try_decide(&mut self, out: &mut Vec<Output>) -> bool {
        let Some(validators) = &self.validators else {
            return false;
        };
        let mut candidate = None;
        let mut to_validate = Vec::new();
        'rounds: for r in self.votes.rounds() {
            for (hash, power) in self.votes.values(r, VoteType::Precommit) {
                if !validators.is_quorum(power) || !self.blocks.contains_key(&hash) {
                    continue;
                }
                match self.validity.get(&hash) {
                    Some(true) => {
                        candidate = Some((r, hash));
                        break 'rounds;
                    }
                    Some(false) => {}
                    None => to_validate.push(hash),
                }
            }
        }
        for hash in to_validate {
            self.request_validation(hash, out);
        }
        let Some((round, hash)) = candidate else {
            return false;
        };
        let Some(block) = self.blocks.get(&hash).cloned() else {
            return false;
        };
        let sigs = self.votes.commit_sigs(round, hash);
        let Ok(commit) = CommitCertificate::new(self.height, round, hash, sigs) else {
            return false;
        };
        self.stage = Stage::Decided;
        out.push(Output::Decided {
            height: self.height,
            round,
            block,
            commit,
        });
        true
    }

    /// Line 55: messages of more than a third of the power from a later
    /// round move us to that round.
    fn try_round_skip(&mut self, out: &mut Vec<Output>) -> bool {
        let Some(validators) = &self.validators else {
            return false;
        };
        let current = self.round;
        let near = self
            .votes
            .rounds()
            .rev()
            .find(|r| *r > current && validators.is_one_third(self.votes.sender_power(*r)));
        let far = {
            let mut by_round: Vec<(Round, u64)> = self
                .far_rounds
                .iter()
                .filter(|(_, r)| **r > current)
                .map(|(k, r)| (*r, validators.power_of(k)))
                .collect();
            by_round.sort_by_key(|&(r, _)| std::cmp::Reverse(r));
            let mut acc = 0u64;
            let mut found = None;
            for (r, p) in by_round {
                acc = acc.saturating_add(p);
                if validators.is_one_third(acc) {
                    // Validators with more than a third of the power are at
                    // round r or later, so some honest one is.
                    found = Some(r);
                    break;
                }
            }
            found
        };
        match near.max(far) {
            Some(target) => {
                self.start_round(target, out);
                true
            }
            None => false,
        }
    }

    /// Lines 22 and 28, while in the propose step.
    fn try_propose_step_rules(&mut self, out: &mut Vec<Output>) -> bool {
        if self.step != Step::Propose {
            return false;
        }
        let Some(sp) = self.proposals.get(&self.round) else {
            return false;
        };
        let hash = sp.proposal.block_hash;
        let pol = sp.proposal.pol_round;
        let Some(&valid) = self.validity.get(&hash) else {
            return false;
        };
        let accept = match pol {
            // Line 22: lockedRound = -1 or lockedValue = v.
            None => valid && self.lock.locked.is_none_or(|(_, lh)| lh == hash),
            // Line 28: a polka for v in round vr < round_p.
            Some(vr) => {
                let Some(validators) = &self.validators else {
                    return false;
                };
                let polka = self.votes.power_for(vr, VoteType::Prevote, Some(hash));
                if vr >= self.round || !validators.is_quorum(polka) {
                    return false;
                }
                valid
                    && self
                        .lock
                        .locked
                        .is_none_or(|(lr, lh)| lr <= vr || lh == hash)
            }
        };
        self.vote(VoteType::Prevote, accept.then_some(hash), out);
        self.step = Step::Prevote;
        true
    }

    /// Lines 34, 36 and 44.
    fn try_prevote_step_rules(&mut self, out: &mut Vec<Output>) -> bool {
        let Some(validators) = self.validators.clone() else {
            return false;
        };
        let r = self.round;
        let mut changed = false;

        // Line 34: +2/3 prevotes of any kind, first time: start the prevote timer.
        if self.step == Step::Prevote
            && validators.is_quorum(self.votes.power_any(r, VoteType::Prevote))
            && self.scheduled.insert((r, TimeoutKind::Prevote))
        {
            self.schedule(TimeoutKind::Prevote, out);
            changed = true;
        }

        // Line 36: a valid proposal with a polka in this round, first time.
        if self.step >= Step::Prevote && !self.line36_fired.contains(&r) {
            if let Some(hash) = self.proposals.get(&r).map(|p| p.proposal.block_hash) {
                let polka =
                    validators.is_quorum(self.votes.power_for(r, VoteType::Prevote, Some(hash)));
                if polka && self.validity.get(&hash) == Some(&true) {
                    self.line36_fired.insert(r);
                    // The block and its polka must survive a restart before
                    // the precommit that depends on them leaves.
                    if let Some(block) = self.blocks.get(&hash) {
                        out.push(Output::PersistBlock {
                            height: self.height,
                            block: block.clone(),
                        });
                    }
                    self.lock.valid = Some((r, hash));
                    self.lock.polka = self
                        .votes
                        .votes_for(r, VoteType::Prevote, Some(hash))
                        .cloned()
                        .collect();
                    if self.step == Step::Prevote {
                        self.lock.locked = Some((r, hash));
                        self.vote(VoteType::Precommit, Some(hash), out);
                        self.step = Step::Precommit;
                    }
                    changed = true;
                }
            }
        }

        // Line 44: +2/3 prevotes for nil.
        if self.step == Step::Prevote
            && validators.is_quorum(self.votes.power_for(r, VoteType::Prevote, None))
        {
            self.vote(VoteType::Precommit, None, out);
            self.step = Step::Precommit;
            changed = true;
        }
        changed
    }

    /// Line 47: +2/3 precommits of any kind, first time: start the precommit timer.
    fn try_precommit_timeout(&mut self, out: &mut Vec<Output>) -> bool {
        let Some(validators) = &self.validators else {
            return false;
        };
        let r = self.round;
        if validators.is_quorum(self.votes.power_any(r, VoteType::Precommit))
            && self.scheduled.insert((r, TimeoutKind::Precommit))
        {
            self.schedule(TimeoutKind::Precommit, out);
            return true;
        }
        false
    }

    // ---- signing --------------------------------------------------------

    fn propose(&mut self, block: Arc<Block>, pol_round: Option<Round>, out: &mut Vec<Output>) {
        let (Some(key), Some(me)) = (&self.key, self.me) else {
            return;
        };
        match self.signer.check(self.height, self.round, Step::Propose) {
            SignCheck::Sign => {
                let sp = Proposal {
                    height: self.height,
                    round: self.round,
                    block_hash: block.hash(),
                    pol_round,
                    proposer: me,
                }
                .sign(&self.config.chain_id, key);
                self.signer.record(
                    self.height,
                    self.round,
                    SignedMessage::Proposal(sp.clone()),
                    &self.lock,
                );
                out.push(Output::PersistAndBroadcast {
                    signer_state: self.signer.clone(),
                    message: Message::Proposal {
                        proposal: sp.clone(),
                        block: block.clone(),
                    },
                });
                self.accept_proposal(sp, block, true, out);
            }
            SignCheck::Resend(SignedMessage::Proposal(sp))
                if sp.proposal.block_hash == block.hash() =>
            {
                out.push(Output::Broadcast(Message::Proposal {
                    proposal: sp.clone(),
                    block: block.clone(),
                }));
                self.accept_proposal(sp, block, true, out);
            }
            // Signed something else here before a restart: stay silent.
            _ => {}
        }
    }

    /// Signs (or re-sends) our vote of type `t` for `value` in the current
    /// round, if we are a validator of this height.
    fn vote(&mut self, t: VoteType, value: Option<Hash>, out: &mut Vec<Output>) {
        let (Some(key), Some(me)) = (&self.key, self.me) else {
            return;
        };
        let power = self.power_of(&me);
        if power == 0 {
            return;
        }
        match self.signer.check(self.height, self.round, step_of(t)) {
            SignCheck::Sign => {
                let sv = Vote {
                    vote_type: t,
                    height: self.height,
                    round: self.round,
                    block_hash: value,
                    validator: me,
                }
                .sign(&self.config.chain_id, key);
                self.signer.record(
                    self.height,
                    self.round,
                    SignedMessage::Vote(sv.clone()),
                    &self.lock,
                );
                out.push(Output::PersistAndBroadcast {
                    signer_state: self.signer.clone(),
                    message: Message::Vote(sv.clone()),
                });
                self.add_vote(sv, power, out);
            }
            SignCheck::Resend(SignedMessage::Vote(sv)) if sv.vote.vote_type == t => {
                out.push(Output::Broadcast(Message::Vote(sv.clone())));
                self.add_vote(sv, power, out);
            }
            _ => {}
        }
    }

    fn rebroadcast(&mut self, out: &mut Vec<Output>) {
        let Some(me) = self.me else { return };
        if let Some(sp) = self.proposals.get(&self.round) {
            if sp.proposal.proposer == me {
                if let Some(block) = self.blocks.get(&sp.proposal.block_hash) {
                    out.push(Output::Broadcast(Message::Proposal {
                        proposal: sp.clone(),
                        block: block.clone(),
                    }));
                }
                // A re-proposal (line 16) is only accepted by nodes that saw
                // its polka (line 28): relay the polka's prevotes, which are
                // signed by their validators and so can be passed on by anyone.
                if let Some(vr) = sp.proposal.pol_round {
                    for v in
                        self.votes
                            .votes_for(vr, VoteType::Prevote, Some(sp.proposal.block_hash))
                    {
                        out.push(Output::Broadcast(Message::Vote(v.clone())));
                    }
                }
            }
        }
        // Our votes of the previous round too: a node moves on from round r
        // only after +2/3 precommits of r, so honest nodes still in r need at
        // most what we signed there to time out and follow us.
        let prev = self.round.get().checked_sub(1).map(Round);
        for r in prev.into_iter().chain([self.round]) {
            for t in [VoteType::Prevote, VoteType::Precommit] {
                if let Some(v) = self.votes.vote_of(r, t, &me) {
                    out.push(Output::Broadcast(Message::Vote(v.clone())));
                }
            }
        }
    }

    // ---- helpers ---------------------------------------------------------

    fn schedule(&self, kind: TimeoutKind, out: &mut Vec<Output>) {
        out.push(Output::ScheduleTimeout {
            timeout: Timeout {
                kind,
                height: self.height,
                round: self.round,
            },
            duration_ms: self.config.timeouts.duration_ms(kind, self.round),
        });
    }

    fn power_of(&self, who: &PublicKey) -> u64 {
        self.validators.as_ref().map_or(0, |v| v.power_of(who))
    }

    fn is_far(&self, r: Round) -> bool {
        u64::from(r.get()) > u64::from(self.round.get()) + u64::from(ROUND_WINDOW)
    }

    fn note_far(&mut self, who: PublicKey, r: Round) {
        let e = self.far_rounds.entry(who).or_insert(r);
        if *e < r {
            *e = r;
        }
    }

    fn record_evidence(&mut self, ev: Evidence, out: &mut Vec<Output>) {
        if self.evidence.len() < MAX_EVIDENCE && !self.evidence.contains(&ev) {
            self.evidence.push(ev.clone());
        }
        out.push(Output::Evidence(ev));
    }
}
