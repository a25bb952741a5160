use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use palisade_types::{
    Block, CommitCertificate, Hash, Height, Keypair, Proposal, PublicKey, Round, SignedProposal,
    SignedVote, ValidatorSet, Vote, VoteType,
};

use crate::future::FutureBuffer;
use crate::message::MessageError;
use crate::multiplex::View;
use crate::signer::{step_of, SignCheck};
use crate::transition::{self, Action, Event, Line, RoundState, StepState};
use crate::votes::{Counted, Threshold, VoteKeeper, VoteOutcome};
use crate::{
    proposer, Config, Evidence, Input, Message, Output, SignedMessage, SignerState, Step, Timeout,
    TimeoutKind, Verified,
};

/// Votes and proposals more than this many rounds ahead of ours are not
/// stored, only noted for the round-skip rule: a Byzantine validator cannot
/// make us keep state for millions of rounds.
pub const ROUND_WINDOW: u32 = 16;
/// Evidence items kept in memory (all are also emitted as outputs).
pub const MAX_EVIDENCE: usize = 1_024;

/// A rule of Algorithm 1 that fired: its line, where, and on what event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    pub height: Height,
    /// The round the node was in when the rule fired.
    pub round: Round,
    pub line: Line,
    pub event: Event,
}

/// One node's Tendermint consensus (Algorithm 1 of arXiv:1807.04938): the
/// driver around the pure transition table ([`transition::apply`]). It
/// checks and stores what arrives, counts votes ([`VoteKeeper`], which
/// reports each threshold once), asks the multiplexer which events now
/// hold, applies them, and carries out their actions: signing (durable
/// before sent), timers, block requests and decisions. Feed it with
/// [`Consensus::handle`].
#[derive(Debug)]
pub struct Consensus {
    config: Config,
    key: Option<Keypair>,
    me: Option<PublicKey>,
    signer: SignerState,

    height: Height,
    /// round_p, step_p, the lock and validValue.
    state: RoundState,
    validators: Option<ValidatorSet>,
    /// The +2/3 prevotes behind validValue, saved with each signature.
    polka: Vec<SignedVote>,

    proposals: BTreeMap<Round, SignedProposal>,
    blocks: BTreeMap<Hash, Arc<Block>>,
    validity: BTreeMap<Hash, bool>,
    validation_requested: BTreeSet<Hash>,
    votes: VoteKeeper,
    /// A verified commit certificate for this height, from block sync.
    certificate: Option<CommitCertificate>,
    /// Algorithm 1's timers started in this height: each once per round.
    scheduled: BTreeSet<(Round, TimeoutKind)>,
    block_requested: Option<Round>,
    /// Events whose conditions hold, waiting for the transition table.
    pending: VecDeque<Event>,
    /// The rules the last input fired, in order.
    trace: Vec<Fired>,

    /// The next height's messages (see [`crate::future`]).
    future: FutureBuffer,
    behind_reported: Height,
    evidence: Vec<Evidence>,
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
            height: Height::GENESIS,
            state: RoundState::unstarted(None, None),
            validators: None,
            polka: Vec::new(),
            proposals: BTreeMap::new(),
            blocks: BTreeMap::new(),
            validity: BTreeMap::new(),
            validation_requested: BTreeSet::new(),
            votes: VoteKeeper::default(),
            certificate: None,
            scheduled: BTreeSet::new(),
            block_requested: None,
            pending: VecDeque::new(),
            trace: Vec::new(),
            future: FutureBuffer::default(),
            behind_reported: Height::GENESIS,
            evidence: Vec::new(),
        }
    }

    fn started(&self) -> bool {
        self.state.step != StepState::Unstarted
    }

    pub fn height(&self) -> Height {
        self.height
    }
    pub fn round(&self) -> Round {
        self.state.round
    }
    /// Where the height stands: Algorithm 1's step, with both ends explicit.
    pub fn state(&self) -> StepState {
        self.state.step
    }
    /// Algorithm 1's state variables of the current height.
    pub fn round_state(&self) -> RoundState {
        self.state
    }
    pub fn is_decided(&self) -> bool {
        self.state.step == StepState::Commit
    }
    pub fn locked(&self) -> Option<(Round, Hash)> {
        self.state.locked
    }
    pub fn valid(&self) -> Option<(Round, Hash)> {
        self.state.valid
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
    /// The rules of Algorithm 1 the last [`Consensus::handle`] fired, in
    /// order (for tests and debug logs).
    pub fn trace(&self) -> &[Fired] {
        &self.trace
    }
    /// Messages kept for the next height: how many, and their bytes.
    pub fn buffered(&self) -> (usize, usize) {
        (self.future.len(), self.future.bytes())
    }

    /// Processes one input and returns what the node must do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        self.trace.clear();
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
            } => self.on_validated(height, block_hash, valid),
            Input::ProposeBlock {
                height,
                round,
                block,
            } => self.on_own_block(height, round, block),
            Input::Commit { block, commit } => self.on_commit(block, commit),
        }
        self.run(&mut out);
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

    // ---- the transition table -----------------------------------------

    /// Applies the pending events in order until none is left. Events come
    /// from facts that arrive once each (a vote, a proposal, a validity
    /// answer, a timer) and from steps that only move forward, so the
    /// queue runs dry.
    fn run(&mut self, out: &mut Vec<Output>) {
        while let Some(event) = self.pending.pop_front() {
            let before = self.state;
            let t = transition::apply(before, event);
            let Some(line) = t.line else { continue };
            self.trace.push(Fired {
                height: self.height,
                round: before.round,
                line,
                event,
            });
            self.state = t.state;
            if line == ROUND_START {
                self.on_round_start(out);
            }
            for action in t.actions {
                self.carry_out(action, before, out);
            }
            if (self.state.round, self.state.step) != (before.round, before.step) {
                let events = self.view().on_step();
                self.pending.extend(events);
            }
        }
    }

    fn carry_out(&mut self, action: Action, before: RoundState, out: &mut Vec<Output>) {
        match action {
            Action::Propose { value, pol_round } => match self.blocks.get(&value).cloned() {
                Some(block) => self.propose(block, pol_round, out),
                // validValue's block is not held (a restart lost it): a new
                // block serves as well; line 28 keeps locked peers safe.
                None => self.request_block(out),
            },
            Action::RequestValue => self.request_block(out),
            Action::Prevote(value) => self.vote(VoteType::Prevote, value, out),
            Action::Precommit(value) => self.vote(VoteType::Precommit, value, out),
            Action::Schedule(kind) => {
                if self.scheduled.insert((self.state.round, kind)) {
                    self.schedule(kind, out);
                }
            }
            Action::SaveValid { value } => self.save_valid(value, out),
            Action::Decide { round, value } => {
                let decided = self.decide(round, value, out);
                debug_assert!(decided, "line 49 fired without a block or certificate");
                if !decided {
                    self.state = before;
                }
            }
            Action::StartRound(round) => {
                let proposer = self.proposes(round);
                self.pending.push_front(Event::NewRound { round, proposer });
            }
        }
    }

    fn view(&self) -> View<'_> {
        View {
            state: self.state,
            proposals: &self.proposals,
            blocks: &self.blocks,
            validity: &self.validity,
            votes: &self.votes,
            certificate: self.certificate.as_ref(),
        }
    }

    /// Queues the events that thresholds just crossed make true.
    fn on_crossed(&mut self, crossed: impl IntoIterator<Item = (Round, Threshold)>) {
        for (round, threshold) in crossed {
            let event = self.view().on_threshold(round, threshold);
            self.pending.extend(event);
        }
    }

    /// Queues the events that `value`'s block and validity, both known
    /// now, make true.
    fn on_value_known(&mut self, value: Hash) {
        let events = self.view().on_value(value);
        self.pending.extend(events);
    }

    /// Whether this node proposes in `round` of the current height.
    fn proposes(&self, round: Round) -> bool {
        match (&self.validators, self.me) {
            (Some(set), Some(me)) => proposer(set, self.height, round) == me,
            _ => false,
        }
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
        self.reset(height, validators, restored_blocks);
        // The round starts before anything is counted, at the round this
        // node last signed in (after a restart mid-height).
        let resume = self.signer.resume_round(height);
        self.pending.push_back(Event::NewRound {
            round: resume,
            proposer: self.proposes(resume),
        });
        self.run(out);
        // After a restart mid-height, our earlier votes still count and are
        // re-sent by the rebroadcast timer.
        let mine: Vec<SignedVote> = self
            .signer
            .votes_at(height)
            .chain(self.polka.iter())
            .cloned()
            .collect();
        for v in mine {
            let power = self.power_of(&v.vote.validator);
            self.count_vote(v, power, out);
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
                        self.count_vote(v, power, out);
                    }
                } else {
                    self.on_vote(Verified::trusted(v), out);
                }
            }
        }
    }

    /// Forgets the last height and sets up `height`, with the lock this
    /// node saved for it before a restart, if any.
    fn reset(&mut self, height: Height, validators: ValidatorSet, restored: Vec<Arc<Block>>) {
        let lock = self.signer.lock_at(height);
        self.height = height;
        self.state = RoundState::unstarted(lock.locked, lock.valid);
        self.polka = lock.polka;
        self.votes = VoteKeeper::new(validators.total_power());
        self.validators = Some(validators);
        self.proposals.clear();
        self.blocks.clear();
        self.validity.clear();
        for block in restored {
            if block.height() == height {
                // Saved only after this node validated it.
                let hash = block.hash();
                self.validity.insert(hash, true);
                self.blocks.insert(hash, block);
            }
        }
        self.validation_requested.clear();
        self.certificate = None;
        self.scheduled.clear();
        self.block_requested = None;
        self.pending.clear();
        // Report again if, after catching up one height, we are still behind.
        self.behind_reported = height;
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
        let skip = self.votes.note_sender(r, who, power);
        self.on_crossed(skip.map(|th| (r, th)));
        let hash = sp.proposal.block_hash;
        self.proposals.insert(r, sp);
        self.blocks.entry(hash).or_insert_with(|| block.clone());
        if own {
            self.validity.insert(hash, true);
        } else {
            self.request_validation(hash, out);
        }
        if self.validity.contains_key(&hash) {
            self.on_value_known(hash);
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

    /// The node's answer to [`Output::ValidateBlock`]. Each block is sent
    /// for validation once a height (`validation_requested`), so there is
    /// one answer; a second one (a confused node) changes nothing.
    fn on_validated(&mut self, height: Height, hash: Hash, valid: bool) {
        if !self.started() || height != self.height || self.validity.contains_key(&hash) {
            return;
        }
        self.validity.insert(hash, valid);
        if self.blocks.contains_key(&hash) {
            self.on_value_known(hash);
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
        self.count_vote(sv.into_inner(), power, out);
    }

    fn count_vote(&mut self, sv: SignedVote, power: u64, out: &mut Vec<Output>) {
        let r = sv.vote.round;
        if self.is_far(r) {
            self.note_far(sv.vote.validator, r);
            return;
        }
        let Counted { outcome, crossed } = self.votes.add(sv, power);
        if let VoteOutcome::Equivocation(ev) = outcome {
            self.record_evidence(ev, out);
        }
        self.on_crossed(crossed);
    }

    fn on_timeout(&mut self, t: Timeout, out: &mut Vec<Output>) {
        if t.height != self.height || t.round != self.state.round {
            return;
        }
        let round = t.round;
        let event = match t.kind {
            TimeoutKind::Propose => Event::TimeoutPropose { round },
            TimeoutKind::Prevote => Event::TimeoutPrevote { round },
            TimeoutKind::Precommit => Event::TimeoutPrecommit { round },
            // Not a rule of the paper: re-sending for lossy links.
            TimeoutKind::Rebroadcast => {
                if self.started() && !self.is_decided() {
                    self.rebroadcast(out);
                    self.schedule(TimeoutKind::Rebroadcast, out);
                }
                return;
            }
        };
        self.pending.push_back(event);
    }

    /// The node's answer to [`Output::RequestBlock`] (line 18's getValue).
    fn on_own_block(&mut self, height: Height, round: Round, block: Arc<Block>) {
        if self.state.step != StepState::Propose
            || height != self.height
            || round != self.state.round
            || self.block_requested != Some(round)
            || block.height() != height
        {
            return;
        }
        self.block_requested = None;
        let value = block.hash();
        self.blocks.entry(value).or_insert(block);
        self.pending.push_back(Event::ProposeValue { round, value });
    }

    /// A commit certificate from block sync: +2/3 precommits gathered by a
    /// peer, for line 49 like those counted here.
    fn on_commit(&mut self, block: Arc<Block>, commit: CommitCertificate) {
        if !self.started() || self.is_decided() || commit.height != self.height {
            return;
        }
        let hash = block.hash();
        if block.height() != self.height || hash != commit.block_hash {
            return;
        }
        let Some(validators) = &self.validators else {
            return;
        };
        if commit.verify(&self.config.chain_id, validators).is_err() {
            return;
        }
        self.certificate = Some(commit);
        self.blocks.entry(hash).or_insert(block);
        // More than two thirds of the power found it valid.
        self.validity.insert(hash, true);
        self.on_value_known(hash);
    }

    // ---- actions --------------------------------------------------------

    /// A round started (line 11): no block is awaited yet, and the
    /// rebroadcast timer runs for it.
    fn on_round_start(&mut self, out: &mut Vec<Output>) {
        self.block_requested = None;
        self.schedule(TimeoutKind::Rebroadcast, out);
    }

    fn request_block(&mut self, out: &mut Vec<Output>) {
        let Some(me) = self.me else { return };
        let round = self.state.round;
        self.block_requested = Some(round);
        out.push(Output::RequestBlock {
            height: self.height,
            round,
            proposer: me,
        });
    }

    /// Lines 42-43: the block of validValue and its polka must survive a
    /// restart before the precommit that depends on them leaves.
    fn save_valid(&mut self, value: Hash, out: &mut Vec<Output>) {
        if let Some(block) = self.blocks.get(&value) {
            out.push(Output::PersistBlock {
                height: self.height,
                block: block.clone(),
            });
        }
        self.polka = self
            .votes
            .votes_for(self.state.round, VoteType::Prevote, Some(value))
            .cloned()
            .collect();
    }

    /// Lines 49-54: outputs the decision with its commit certificate (the
    /// one from block sync, or one built from the precommits counted).
    /// False if it cannot be built, which the multiplexer's checks rule out.
    fn decide(&mut self, round: Round, value: Hash, out: &mut Vec<Output>) -> bool {
        let Some(block) = self.blocks.get(&value).cloned() else {
            return false;
        };
        let commit = match &self.certificate {
            Some(c) if c.round == round && c.block_hash == value => Ok(c.clone()),
            _ => CommitCertificate::new(
                self.height,
                round,
                value,
                self.votes.commit_sigs(round, value),
            ),
        };
        let Ok(commit) = commit else {
            return false;
        };
        out.push(Output::Decided {
            height: self.height,
            round,
            block,
            commit,
        });
        true
    }

    fn propose(&mut self, block: Arc<Block>, pol_round: Option<Round>, out: &mut Vec<Output>) {
        let (Some(key), Some(me)) = (&self.key, self.me) else {
            return;
        };
        let (height, round) = (self.height, self.state.round);
        match self.signer.check(height, round, Step::Propose) {
            SignCheck::Sign => {
                let sp = Proposal {
                    height,
                    round,
                    block_hash: block.hash(),
                    pol_round,
                    proposer: me,
                }
                .sign(&self.config.chain_id, key);
                self.signer.record(
                    height,
                    SignedMessage::Proposal(sp.clone()),
                    &self.state,
                    &self.polka,
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
        let (height, round) = (self.height, self.state.round);
        match self.signer.check(height, round, step_of(t)) {
            SignCheck::Sign => {
                let sv = Vote {
                    vote_type: t,
                    height,
                    round,
                    block_hash: value,
                    validator: me,
                }
                .sign(&self.config.chain_id, key);
                self.signer.record(
                    height,
                    SignedMessage::Vote(sv.clone()),
                    &self.state,
                    &self.polka,
                );
                out.push(Output::PersistAndBroadcast {
                    signer_state: self.signer.clone(),
                    message: Message::Vote(sv.clone()),
                });
                self.count_vote(sv, power, out);
            }
            SignCheck::Resend(SignedMessage::Vote(sv)) if sv.vote.vote_type == t => {
                out.push(Output::Broadcast(Message::Vote(sv.clone())));
                self.count_vote(sv, power, out);
            }
            _ => {}
        }
    }

    fn rebroadcast(&mut self, out: &mut Vec<Output>) {
        let Some(me) = self.me else { return };
        if let Some(sp) = self.proposals.get(&self.state.round) {
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
        // Our votes of the last earlier round we voted in too: a node moves
        // on from round r after +2/3 precommits of r, so honest nodes still
        // in r may need what we signed there to time out and follow us. The
        // signer state keeps them across a restart for this.
        let earlier = self.votes.last_round_of(&me, self.state.round);
        for r in earlier.into_iter().chain([self.state.round]) {
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
                round: self.state.round,
            },
            duration_ms: self.config.timeouts.duration_ms(kind, self.state.round),
        });
    }

    fn power_of(&self, who: &PublicKey) -> u64 {
        self.validators.as_ref().map_or(0, |v| v.power_of(who))
    }

    fn is_far(&self, r: Round) -> bool {
        u64::from(r.get()) > u64::from(self.state.round.get()) + u64::from(ROUND_WINDOW)
    }

    /// A message from `who` for round `r`, beyond the window: noted for
    /// line 55 only.
    fn note_far(&mut self, who: PublicKey, r: Round) {
        let power = self.power_of(&who);
        self.votes.note_far(who, r, power);
        let event = self.view().on_far_round();
        self.pending.extend(event);
    }

    fn record_evidence(&mut self, ev: Evidence, out: &mut Vec<Output>) {
        if self.evidence.len() < MAX_EVIDENCE && !self.evidence.contains(&ev) {
            self.evidence.push(ev.clone());
        }
        out.push(Output::Evidence(ev));
    }
}

/// The line at which a round starts (`StartRound`).
const ROUND_START: Line = Line(11);
