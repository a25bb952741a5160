//! Which piece to ask which peer for: the scheduling core of a download,
//! with no IO (the node sends the requests it returns and reports back
//! what came of them).
//!
//! - Several requests in flight per peer ([`PER_PEER`]) and in total
//!   ([`IN_FLIGHT`]), so a download keeps every holder busy.
//! - Rarest first: of the pieces a peer can send, the one fewest peers
//!   hold, so a piece only one peer has is fetched while that peer is here.
//!   The choice looks at a window of the pieces not yet asked for, from a
//!   place that moves through the file and differs per peer, so a request
//!   costs the same work in a file of a thousand pieces or a million.
//! - Endgame: once every missing piece is asked for, an idle peer gets a
//!   second request for a piece still in flight elsewhere; the first
//!   answer wins and the other is cancelled (its answer, if it comes, is
//!   dropped unread), so one slow peer cannot hold the last piece.
//! - A peer that sends a piece that does not verify is dropped (the node
//!   penalizes it) and its pieces go to others; a peer whose requests keep
//!   failing is rested for a while.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::piece_count;

/// Most requests in flight to one peer.
pub const PER_PEER: usize = 4;
/// Most requests in flight for one download.
pub const IN_FLIGHT: usize = 16;
/// Most requests for the same piece at once (in the endgame).
const MAX_COPIES: usize = 2;
/// Failed requests in a row after which a peer is rested.
const FAILURES_TO_REST: u32 = 3;
/// How long a failing peer is rested.
const REST: Duration = Duration::from_secs(10);
/// Pieces not asked for yet that one choice looks at, at most.
const WINDOW: usize = 4_096;
/// Of those, the ones the peer holds that it compares by rarity.
const CANDIDATES: usize = 256;

/// What a peer holds of the file, as it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerHolds {
    All,
    /// Bit `i` of byte `i / 8` for piece `i`.
    Some(Vec<u8>),
}

impl PeerHolds {
    fn has(&self, piece: u64) -> bool {
        match self {
            PeerHolds::All => true,
            PeerHolds::Some(bits) => bits
                .get((piece / 8) as usize)
                .is_some_and(|b| b & (1 << (piece % 8)) != 0),
        }
    }

    /// The pieces held, below `count`, for a partial holder.
    fn pieces(&self, count: u64) -> Vec<u64> {
        match self {
            PeerHolds::All => Vec::new(),
            PeerHolds::Some(bits) => bits
                .iter()
                .enumerate()
                .flat_map(|(byte, b)| {
                    (0..8u64)
                        .filter(move |bit| b & (1 << bit) != 0)
                        .map(move |bit| byte as u64 * 8 + bit)
                })
                .filter(|p| *p < count)
                .collect(),
        }
    }
}

#[derive(Debug)]
struct PeerState {
    holds: PeerHolds,
    in_flight: BTreeSet<u64>,
    failures: u32,
    rested_until: Option<Instant>,
    /// Where this peer's next look through the file starts.
    cursor: u64,
}

/// A request the node should send: piece `piece` from `peer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask<P> {
    pub peer: P,
    pub piece: u64,
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The piece verified and is written.
    Verified,
    /// The piece did not verify: the peer lied.
    Corrupt,
    /// No piece came (refused, disconnected).
    Failed,
    /// No answer in time: the peer is rested at once (a peer that holds
    /// requests without answering must not hold the download's budget).
    TimedOut,
}

/// The scheduling state of one download.
#[derive(Debug)]
pub struct Download<P: Eq + Hash + Ord + Copy> {
    pieces: u64,
    held: Vec<bool>,
    remaining: u64,
    /// Missing pieces nobody is asked for.
    unasked: BTreeSet<u64>,
    /// Who is asked for each piece in flight.
    asked: HashMap<u64, BTreeSet<P>>,
    peers: std::collections::BTreeMap<P, PeerState>,
    /// Peers that hold the whole file.
    complete_holders: u32,
    /// Per piece, the partial holders that have it (whole-file holders
    /// are counted once in `complete_holders`).
    partial_avail: Vec<u32>,
    /// Peers that sent bad data: never asked again by this download.
    banned: BTreeSet<P>,
    next_cursor: u64,
}

impl<P: Eq + Hash + Ord + Copy> Download<P> {
    /// A download of a `size`-byte file of which `held` pieces are held
    /// already (`held(i)` for piece `i`).
    pub fn new(size: u64, held: impl Fn(u64) -> bool) -> Download<P> {
        let pieces = piece_count(size);
        let held: Vec<bool> = (0..pieces).map(held).collect();
        let unasked: BTreeSet<u64> = (0..pieces).filter(|i| !held[*i as usize]).collect();
        Download {
            pieces,
            remaining: unasked.len() as u64,
            held,
            unasked,
            asked: HashMap::new(),
            peers: std::collections::BTreeMap::new(),
            complete_holders: 0,
            partial_avail: vec![0; pieces as usize],
            banned: BTreeSet::new(),
            next_cursor: 0,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.remaining == 0
    }

    /// Pieces still missing.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Peers that hold something this download still needs (a look at
    /// every missing piece: for progress reports now and then, not for
    /// every piece).
    pub fn useful_peers(&self) -> usize {
        if self.remaining == 0 {
            return 0;
        }
        self.peers
            .values()
            .filter(|p| match &p.holds {
                PeerHolds::All => true,
                h => (0..self.pieces).any(|i| !self.held_piece(i) && h.has(i)),
            })
            .count()
    }

    /// The peers it knows holdings of.
    pub fn peer_ids(&self) -> Vec<P> {
        self.peers.keys().copied().collect()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.peers.values().map(|p| p.in_flight.len()).sum()
    }

    fn held_piece(&self, i: u64) -> bool {
        self.held.get(i as usize).copied().unwrap_or(true)
    }

    fn availability(&self, i: u64) -> u32 {
        self.complete_holders + self.partial_avail.get(i as usize).copied().unwrap_or(0)
    }

    /// Adds (`sign` 1) or removes (-1) `holds` from the availability counts.
    fn count(&mut self, holds: &PeerHolds, add: bool) {
        match holds {
            PeerHolds::All if add => self.complete_holders += 1,
            PeerHolds::All => self.complete_holders = self.complete_holders.saturating_sub(1),
            h => {
                for i in h.pieces(self.pieces) {
                    if let Some(a) = self.partial_avail.get_mut(i as usize) {
                        *a = if add { *a + 1 } else { a.saturating_sub(1) };
                    }
                }
            }
        }
    }

    /// `peer` says it holds `holds` (again: this replaces what it said).
    pub fn peer_holds(&mut self, peer: P, holds: PeerHolds) {
        if self.banned.contains(&peer) {
            return;
        }
        self.count(&holds, true);
        if let Some(p) = self.peers.get_mut(&peer) {
            let old = std::mem::replace(&mut p.holds, holds);
            self.count(&old, false);
            return;
        }
        let cursor = self.next_cursor;
        // Spread starting points across the file.
        self.next_cursor = self
            .next_cursor
            .wrapping_add(self.pieces / 4 + 1)
            .checked_rem(self.pieces.max(1))
            .unwrap_or(0);
        self.peers.insert(
            peer,
            PeerState {
                holds,
                in_flight: BTreeSet::new(),
                failures: 0,
                rested_until: None,
                cursor,
            },
        );
    }

    /// `peer` is gone: its requests are void.
    pub fn peer_gone(&mut self, peer: &P) {
        if let Some(p) = self.peers.remove(peer) {
            self.count(&p.holds, false);
            for piece in p.in_flight {
                self.unask(piece, peer);
            }
        }
    }

    /// `peer` no longer has `piece` in flight; a piece nobody is asked
    /// for any more goes back to the unasked.
    fn unask(&mut self, piece: u64, peer: &P) {
        if let Some(set) = self.asked.get_mut(&piece) {
            set.remove(peer);
            if set.is_empty() {
                self.asked.remove(&piece);
                if !self.held_piece(piece) {
                    self.unasked.insert(piece);
                }
            }
        }
    }

    /// The requests to send now.
    pub fn next_asks(&mut self, now: Instant) -> Vec<Ask<P>> {
        let mut out = Vec::new();
        let mut total = self.in_flight();
        if self.remaining == 0 {
            return out;
        }
        let peer_ids: Vec<P> = self.peers.keys().copied().collect();
        // Round-robin over peers, one request each per pass, so the
        // in-flight budget is shared.
        loop {
            let mut progressed = false;
            for peer in &peer_ids {
                if total >= IN_FLIGHT {
                    return out;
                }
                let Some(piece) = self.pick(peer, now) else {
                    continue;
                };
                if let Some(p) = self.peers.get_mut(peer) {
                    p.in_flight.insert(piece);
                }
                self.unasked.remove(&piece);
                self.asked.entry(piece).or_default().insert(*peer);
                out.push(Ask { peer: *peer, piece });
                total += 1;
                progressed = true;
            }
            if !progressed {
                return out;
            }
        }
    }

    /// The piece to ask `peer` for next, if any.
    fn pick(&mut self, peer: &P, now: Instant) -> Option<u64> {
        let p = self.peers.get(peer)?;
        if p.in_flight.len() >= PER_PEER || p.rested_until.is_some_and(|t| t > now) {
            return None;
        }
        // Pieces nobody is asked for, in a window from the peer's cursor
        // (wrapping), rarest first.
        let window = self
            .unasked
            .range(p.cursor..)
            .chain(self.unasked.range(..p.cursor))
            .take(WINDOW);
        let mut best: Option<(u32, u64)> = None;
        let mut seen = 0;
        for &i in window {
            if !p.holds.has(i) {
                continue;
            }
            let a = self.availability(i);
            if best.is_none_or(|(b, _)| a < b) {
                best = Some((a, i));
            }
            seen += 1;
            if seen >= CANDIDATES || a <= 1 {
                break;
            }
        }
        if let Some((_, i)) = best {
            if let Some(p) = self.peers.get_mut(peer) {
                p.cursor = i + 1;
            }
            return Some(i);
        }
        if !self.unasked.is_empty() {
            // Nothing this peer holds in that window: look further next time.
            let skip = WINDOW as u64;
            if let Some(p) = self.peers.get_mut(peer) {
                p.cursor = (p.cursor + skip) % self.pieces.max(1);
            }
            if self.unasked.len() > WINDOW {
                return None;
            }
        }
        // Endgame: every missing piece this peer could send is asked for
        // already; duplicate the one asked of the fewest peers.
        let p = self.peers.get(peer)?;
        self.asked
            .iter()
            .filter(|(i, who)| who.len() < MAX_COPIES && !who.contains(peer) && p.holds.has(**i))
            .min_by_key(|(i, who)| (who.len(), **i))
            .map(|(i, _)| *i)
    }

    /// What came of asking `peer` for `piece`. Returns the other requests
    /// for the same piece to cancel (when it verified).
    pub fn done(&mut self, peer: P, piece: u64, outcome: Outcome, now: Instant) -> Vec<Ask<P>> {
        let mut cancel = Vec::new();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.in_flight.remove(&piece);
        }
        match outcome {
            Outcome::Verified => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.failures = 0;
                }
                if let Some(slot) = self.held.get_mut(piece as usize) {
                    if !*slot {
                        *slot = true;
                        self.remaining -= 1;
                    }
                }
                self.unasked.remove(&piece);
                for other in self.asked.remove(&piece).unwrap_or_default() {
                    if other == peer {
                        continue;
                    }
                    if let Some(p) = self.peers.get_mut(&other) {
                        p.in_flight.remove(&piece);
                    }
                    cancel.push(Ask { peer: other, piece });
                }
            }
            Outcome::Corrupt => {
                self.unask(piece, &peer);
                self.peer_gone(&peer);
                self.banned.insert(peer);
            }
            Outcome::Failed | Outcome::TimedOut => {
                self.unask(piece, &peer);
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.failures += 1;
                    if p.failures >= FAILURES_TO_REST || outcome == Outcome::TimedOut {
                        p.rested_until = Some(now + REST);
                        p.failures = 0;
                    }
                }
            }
        }
        cancel
    }

    /// Whether a request's answer is still wanted (it was not cancelled
    /// and its piece is not held).
    pub fn wanted(&self, peer: &P, piece: u64) -> bool {
        !self.held_piece(piece) && self.asked.get(&piece).is_some_and(|s| s.contains(peer))
    }
}
