//! Which piece to ask which peer for: the scheduling core of a download,
//! with no IO (the node sends the requests it returns and reports back
//! what came of them).
//!
//! - Several requests in flight per peer ([`PER_PEER`]) and in total
//!   ([`IN_FLIGHT`]), so a download keeps every holder busy.
//! - Rarest first: of the pieces a peer can send, the one fewest peers
//!   hold, so a piece only one peer has is fetched while that peer is here.
//!   Ties go to a per-peer rotation so peers start at different places.
//! - Endgame: once every missing piece is asked for, an idle peer gets a
//!   second request for a piece still in flight elsewhere; the first
//!   answer wins and the other is cancelled (its answer, if it comes, is
//!   dropped unread), so one slow peer cannot hold the last piece.
//! - A peer that sends a piece that does not verify is dropped (the node
//!   penalizes it) and its pieces go to others; a peer whose requests keep
//!   failing is rested for a while.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::piece_count;

/// Most requests in flight to one peer.
pub const PER_PEER: usize = 4;
/// Most requests in flight for one download.
pub const IN_FLIGHT: usize = 32;
/// Most requests for the same piece at once (in the endgame).
const MAX_COPIES: usize = 2;
/// Failed requests in a row after which a peer is rested.
const FAILURES_TO_REST: u32 = 3;
/// How long a failing peer is rested.
const REST: Duration = Duration::from_secs(10);

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
}

#[derive(Debug)]
struct PeerState {
    holds: PeerHolds,
    in_flight: BTreeSet<u64>,
    failures: u32,
    rested_until: Option<Instant>,
    /// Where this peer's tie-breaking rotation starts.
    offset: u64,
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
    /// No piece came (refused, timed out, disconnected).
    Failed,
}

/// The scheduling state of one download.
#[derive(Debug)]
pub struct Download<P: Eq + Hash + Ord + Copy> {
    pieces: u64,
    held: Vec<bool>,
    remaining: u64,
    peers: BTreeMap<P, PeerState>,
    /// Who is asked for each piece in flight.
    asked: HashMap<u64, BTreeSet<P>>,
    /// Peers that sent bad data: never asked again by this download.
    banned: BTreeSet<P>,
    next_offset: u64,
}

impl<P: Eq + Hash + Ord + Copy> Download<P> {
    /// A download of a `size`-byte file of which `held` pieces are held
    /// already (`held(i)` for piece `i`).
    pub fn new(size: u64, held: impl Fn(u64) -> bool) -> Download<P> {
        let pieces = piece_count(size);
        let held: Vec<bool> = (0..pieces).map(held).collect();
        let remaining = held.iter().filter(|h| !**h).count() as u64;
        Download {
            pieces,
            held,
            remaining,
            peers: BTreeMap::new(),
            asked: HashMap::new(),
            banned: BTreeSet::new(),
            next_offset: 0,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.remaining == 0
    }

    /// Pieces still missing.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Peers that hold something this download still needs.
    pub fn useful_peers(&self) -> usize {
        self.peers
            .values()
            .filter(|p| (0..self.pieces).any(|i| !self.held_piece(i) && p.holds.has(i)))
            .count()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.peers.values().map(|p| p.in_flight.len()).sum()
    }

    fn held_piece(&self, i: u64) -> bool {
        self.held.get(i as usize).copied().unwrap_or(true)
    }

    /// `peer` says it holds `holds` (again: this replaces what it said).
    pub fn peer_holds(&mut self, peer: P, holds: PeerHolds) {
        if self.banned.contains(&peer) {
            return;
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.holds = holds;
            return;
        }
        let offset = self.next_offset;
        // Spread starting points across the file.
        self.next_offset = self
            .next_offset
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
                offset,
            },
        );
    }

    /// `peer` is gone: its requests are void.
    pub fn peer_gone(&mut self, peer: &P) {
        if let Some(p) = self.peers.remove(peer) {
            for piece in p.in_flight {
                self.unask(piece, peer);
            }
        }
    }

    fn unask(&mut self, piece: u64, peer: &P) {
        if let Some(set) = self.asked.get_mut(&piece) {
            set.remove(peer);
            if set.is_empty() {
                self.asked.remove(&piece);
            }
        }
    }

    /// How many peers hold piece `i`.
    fn availability(&self, i: u64) -> usize {
        self.peers.values().filter(|p| p.holds.has(i)).count()
    }

    /// The requests to send now.
    pub fn next_asks(&mut self, now: Instant) -> Vec<Ask<P>> {
        let mut out = Vec::new();
        let mut total = self.in_flight();
        if self.remaining == 0 {
            return out;
        }
        let mut avail: Vec<usize> = Vec::with_capacity(self.pieces as usize);
        for i in 0..self.pieces {
            avail.push(if self.held_piece(i) {
                0
            } else {
                self.availability(i)
            });
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
                let Some(piece) = self.pick(peer, &avail, now) else {
                    continue;
                };
                if let Some(p) = self.peers.get_mut(peer) {
                    p.in_flight.insert(piece);
                }
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
    fn pick(&self, peer: &P, avail: &[usize], now: Instant) -> Option<u64> {
        let p = self.peers.get(peer)?;
        if p.in_flight.len() >= PER_PEER || p.rested_until.is_some_and(|t| t > now) {
            return None;
        }
        let n = self.pieces;
        let candidates = (0..n)
            .map(|k| (p.offset + k) % n)
            .filter(|i| !self.held_piece(*i) && p.holds.has(*i) && !p.in_flight.contains(i));
        // Pieces nobody is asked for, rarest first.
        let fresh = candidates
            .clone()
            .filter(|i| !self.asked.contains_key(i))
            .min_by_key(|i| avail.get(*i as usize).copied().unwrap_or(usize::MAX));
        if fresh.is_some() {
            return fresh;
        }
        // Endgame: every missing piece this peer could send is asked for
        // already; duplicate the one asked of the fewest peers.
        candidates
            .filter(|i| self.asked.get(i).map_or(0, BTreeSet::len) < MAX_COPIES)
            .min_by_key(|i| self.asked.get(i).map_or(0, BTreeSet::len))
    }

    /// What came of asking `peer` for `piece`. Returns the other requests
    /// for the same piece to cancel (when it verified).
    pub fn done(&mut self, peer: P, piece: u64, outcome: Outcome, now: Instant) -> Vec<Ask<P>> {
        let mut cancel = Vec::new();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.in_flight.remove(&piece);
        }
        self.unask(piece, &peer);
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
                for other in self.asked.remove(&piece).unwrap_or_default() {
                    if let Some(p) = self.peers.get_mut(&other) {
                        p.in_flight.remove(&piece);
                    }
                    cancel.push(Ask { peer: other, piece });
                }
            }
            Outcome::Corrupt => {
                self.peer_gone(&peer);
                self.banned.insert(peer);
            }
            Outcome::Failed => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.failures += 1;
                    if p.failures >= FAILURES_TO_REST {
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
