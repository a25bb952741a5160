//! Validator-set changes: who may make them, and the schedule that
//! queues each one `validator_update_delay` heights ahead after checking
//! the whole schedule with it (`docs/spec.md` section 4.1).

use std::collections::{BTreeMap, BTreeSet};

use palisade_types::limits::MAX_VALIDATORS;
use palisade_types::{Address, Height, PublicKey, Role, Validator, ValidatorSet, MAX_TOTAL_POWER};

use super::MAX_VALIDATOR_POWER;
use crate::applied::Admit;
use crate::params::MAX_VALIDATOR_UPDATE_DELAY;
use crate::state::{Account, AppliedChanges, Overlay, ValidatorChange, ValidatorInfo};
use crate::{ChainParams, StoreError, TxError};

pub(super) fn need_operator(a: &Account) -> Result<(), TxError> {
    if a.has(Role::Admin) || a.has(Role::ValidatorOperator) {
        Ok(())
    } else {
        Err(TxError::unauthorized(Role::ValidatorOperator))
    }
}

/// An admin may change any validator; an operator only those it added.
pub(super) fn may_change(
    st: &Overlay<'_>,
    signer: &Account,
    from: &Address,
    key: &PublicKey,
) -> Result<(), Admit> {
    if signer.has(Role::Admin) || st.validator_operator(key)? == Some(*from) {
        Ok(())
    } else {
        Err(TxError::NotValidatorOperator.into())
    }
}

pub(super) fn valid_key(what: &'static str, key: &PublicKey) -> Result<(), TxError> {
    key.check_point()
        .map_err(|reason| TxError::InvalidValidatorKey { key: what, reason })
}

fn valid_power(p: u64) -> Result<(), TxError> {
    if p == 0 || p > MAX_VALIDATOR_POWER {
        return Err(TxError::InvalidPower {
            max: MAX_VALIDATOR_POWER,
        });
    }
    Ok(())
}

/// A validator set as the schedule changes it, with what the checks need
/// at hand: members by consensus key, the node keys in use, total power.
pub(super) struct SimSet {
    members: BTreeMap<PublicKey, ValidatorInfo>,
    node_keys: BTreeSet<PublicKey>,
    pub(super) total: u128,
}

impl SimSet {
    pub(super) fn new(set: &[ValidatorInfo]) -> SimSet {
        SimSet {
            members: set.iter().map(|v| (v.consensus_key, *v)).collect(),
            node_keys: set.iter().map(|v| v.node_key).collect(),
            total: set.iter().map(|v| u128::from(v.power)).sum(),
        }
    }

    /// Applies `c` if its precondition holds (an added validator's keys
    /// are new, a removed or re-powered one is a member); returns the power
    /// it moves. On error nothing changed.
    pub(super) fn apply(&mut self, c: &ValidatorChange) -> Result<u128, TxError> {
        match c {
            ValidatorChange::Add(v) => {
                if self.members.contains_key(&v.consensus_key) {
                    return Err(TxError::ValidatorExists);
                }
                if !self.node_keys.insert(v.node_key) {
                    return Err(TxError::NodeKeyExists);
                }
                self.members.insert(v.consensus_key, *v);
                self.total += u128::from(v.power);
                Ok(u128::from(v.power))
            }
            ValidatorChange::Remove(k) => {
                let v = self.members.remove(k).ok_or(TxError::ValidatorNotFound)?;
                self.node_keys.remove(&v.node_key);
                self.total -= u128::from(v.power);
                Ok(u128::from(v.power))
            }
            ValidatorChange::SetPower(k, p) => {
                let v = self.members.get_mut(k).ok_or(TxError::ValidatorNotFound)?;
                let (old, new) = (u128::from(v.power), u128::from(*p));
                v.power = *p;
                self.total = self.total - old + new;
                Ok(old.abs_diff(new))
            }
        }
    }

    /// What [`to_set`] needs (keys are unique by construction, powers
    /// non-zero by [`valid_power`]).
    fn check(&self) -> Result<(), TxError> {
        if self.members.is_empty() {
            return Err(TxError::ValidatorChangeTooLarge);
        }
        if self.members.len() > MAX_VALIDATORS {
            return Err(TxError::TooManyValidators {
                max: MAX_VALIDATORS,
            });
        }
        if self.total > u128::from(MAX_TOTAL_POWER) {
            return Err(TxError::TotalPowerTooLarge {
                max: MAX_TOTAL_POWER,
            });
        }
        Ok(())
    }

    /// Members sorted by consensus key, as `meta/validators` keeps them.
    pub(super) fn into_list(self) -> Vec<ValidatorInfo> {
        self.members.into_values().collect()
    }
}

/// Every pending height with its changes, ascending.
type Schedule = Vec<(Height, Vec<ValidatorChange>)>;

pub(super) fn load_schedule(st: &Overlay<'_>) -> Result<Schedule, StoreError> {
    st.pending_heights()?
        .into_iter()
        .map(|h| Ok((h, st.pending(h)?)))
        .collect()
}

/// Schedules `change` for `height + delay` after checking the whole
/// schedule with it (see [`check_schedule`]).
pub(super) fn schedule(
    st: &mut Overlay<'_>,
    height: Height,
    params: &ChainParams,
    change: ValidatorChange,
) -> Result<Height, Admit> {
    match change {
        ValidatorChange::Add(v) => valid_power(v.power)?,
        ValidatorChange::SetPower(_, p) => valid_power(p)?,
        ValidatorChange::Remove(_) => {}
    }
    let at = height
        .checked_add(params.validator_update_delay)
        .map_err(|_| TxError::Overflow)?;
    let mut sched = load_schedule(st)?;
    let (pos, new_height) = match sched.binary_search_by_key(&at, |(h, _)| *h) {
        Ok(i) => {
            // One change per validator and height, so their order within
            // the height does not matter.
            if sched[i].1.iter().any(|c| c.key() == change.key()) {
                return Err(TxError::ValidatorChangeConflict.into());
            }
            sched[i].1.push(change);
            (i, false)
        }
        Err(i) => {
            sched.insert(i, (at, vec![change]));
            (i, true)
        }
    };
    let new = (pos, sched[pos].1.len() - 1);
    check_schedule(st, height, params.validator_update_delay, &sched, Some(new))?;
    st.set_pending(at, &sched[pos].1);
    if new_height {
        st.set_pending_heights(&sched.iter().map(|(h, _)| *h).collect());
    }
    Ok(at)
}

/// Checks, during block `height`, the pending schedule `sched` from the
/// current set: at every height each change's precondition holds, and the
/// set that results is non-empty, has at most `MAX_VALIDATORS` members and
/// at most `MAX_TOTAL_POWER`, unique consensus and node keys (so
/// [`to_set`] succeeds and every node key is a distinct peer); and the
/// changes taking effect within any `delay` consecutive heights, recent
/// ones included, move less than a third of the power the set had before
/// them (so more than two thirds of every set stay in the sets that follow
/// it within a delay). `new` names the change being added (index in
/// `sched`, index in its list): its own failed precondition is reported as
/// such, another change's as a conflict.
pub(super) fn check_schedule(
    st: &Overlay<'_>,
    height: Height,
    delay: u64,
    sched: &Schedule,
    new: Option<(usize, usize)>,
) -> Result<(), Admit> {
    let mut set = SimSet::new(&st.validators()?);
    // Only windows that reach a height not yet executed count: earlier
    // ones were checked when their changes were made.
    let mut timeline: Vec<AppliedChanges> = st
        .validator_history()?
        .into_iter()
        .filter(|e| e.height.get().saturating_add(delay) > height.get().saturating_add(1))
        .collect();
    for (i, (h, changes)) in sched.iter().enumerate() {
        let total_before = set.total;
        let mut moved: u128 = 0;
        for (j, c) in changes.iter().enumerate() {
            moved += set.apply(c).map_err(|e| {
                if new == Some((i, j)) {
                    e
                } else {
                    TxError::ValidatorChangeConflict
                }
            })?;
        }
        set.check()?;
        timeline.push(AppliedChanges {
            height: *h,
            moved: u64::try_from(moved).map_err(|_| TxError::TotalPowerTooLarge {
                max: MAX_TOTAL_POWER,
            })?,
            total_before: u64::try_from(total_before).map_err(|_| TxError::TotalPowerTooLarge {
                max: MAX_TOTAL_POWER,
            })?,
        });
    }
    check_windows(&timeline, delay)?;
    Ok(())
}

/// For each entry of `timeline` (ascending heights), the power moved by it
/// and the entries after it within `delay` heights is less than a third of
/// the total before it. Every window of `delay` heights holds a subset of
/// the entries of one such run, and starts with that run's total.
fn check_windows(timeline: &[AppliedChanges], delay: u64) -> Result<(), TxError> {
    let mut end = 0;
    let mut sum: u128 = 0;
    for (i, first) in timeline.iter().enumerate() {
        let limit = first.height.get().saturating_add(delay);
        while let Some(e) = timeline.get(end).filter(|e| e.height.get() < limit) {
            sum += u128::from(e.moved);
            end += 1;
        }
        if sum * 3 >= u128::from(first.total_before) {
            return Err(TxError::ValidatorChangeTooLarge);
        }
        sum -= u128::from(timeline[i].moved);
    }
    Ok(())
}

/// The consensus view of a runtime validator list.
pub fn to_set(validators: &[ValidatorInfo]) -> Result<ValidatorSet, StoreError> {
    ValidatorSet::new(
        validators
            .iter()
            .map(|v| Validator {
                public_key: v.consensus_key,
                power: v.power,
            })
            .collect(),
    )
    .map_err(|e| StoreError::Corrupt(format!("validator set: {e}")))
}

/// Applies the validator-set changes due at `next` (the height after the
/// block being executed): the set that decides it.
pub(super) fn apply_due(
    st: &mut Overlay<'_>,
    next: Height,
) -> Result<Vec<ValidatorInfo>, StoreError> {
    let mut validators = st.validators()?;
    let due = st.pending(next)?;
    // Written only when something is due: rewriting unchanged values
    // would leave the root as it is but cost tree updates and writes,
    // and make every block look as if it touched the validator set.
    if !due.is_empty() {
        let mut set = SimSet::new(&validators);
        let total_before = set.total;
        let mut moved: u128 = 0;
        for c in &due {
            // Scheduling checked every change against the whole
            // schedule, so none fails here; one that did (state from
            // before the schedule index) is skipped, as it always was.
            if let Ok(m) = set.apply(c) {
                moved += m;
            }
        }
        validators = set.into_list();
        st.set_pending(next, &Vec::new());
        let mut heights = st.pending_heights()?;
        heights.retain(|h| *h != next);
        st.set_pending_heights(&heights);
        let mut history = st.validator_history()?;
        history.retain(|e| e.height.get().saturating_add(MAX_VALIDATOR_UPDATE_DELAY) > next.get());
        history.push(AppliedChanges {
            height: next,
            moved: u64::try_from(moved).unwrap_or(u64::MAX),
            total_before: u64::try_from(total_before).unwrap_or(u64::MAX),
        });
        st.set_validator_history(&history);
        st.set_validators(&validators);
        st.commit_tx();
    }
    Ok(validators)
}
