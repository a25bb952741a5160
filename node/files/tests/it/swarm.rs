//! The download scheduler: rarest first, limits in flight, endgame,
//! cancellation, bad and failing peers.

use std::time::{Duration, Instant};

use palisade_files::swarm::{Ask, Download, Outcome, PeerHolds, IN_FLIGHT, PER_PEER};
use palisade_files::PIECE_BYTES;

fn bits(pieces: &[u64], count: u64) -> PeerHolds {
    let mut b = vec![0u8; count.div_ceil(8) as usize];
    for p in pieces {
        b[(*p / 8) as usize] |= 1 << (p % 8);
    }
    PeerHolds::Some(b)
}

#[test]
fn rarest_pieces_first_and_bounded_per_peer() {
    let now = Instant::now();
    let mut d: Download<u8> = Download::new(8 * PIECE_BYTES, |_| false);
    d.peer_holds(1, PeerHolds::All);
    d.peer_holds(2, bits(&[0, 1, 2, 3, 4, 5, 6], 8));
    // Piece 7 only peer 1 has: it is peer 1's first ask.
    let asks = d.next_asks(now);
    let first_of_1 = asks.iter().find(|a| a.peer == 1).unwrap();
    assert_eq!(first_of_1.piece, 7);
    for peer in [1, 2] {
        assert_eq!(asks.iter().filter(|a| a.peer == peer).count(), PER_PEER);
    }
    // No piece asked twice while others are unasked.
    let mut pieces: Vec<u64> = asks.iter().map(|a| a.piece).collect();
    pieces.sort();
    pieces.dedup();
    assert_eq!(pieces.len(), asks.len());
    assert!(d.next_asks(now).is_empty(), "every peer is at its limit");
}

#[test]
fn total_in_flight_is_bounded() {
    let now = Instant::now();
    let mut d: Download<u16> = Download::new(1000 * PIECE_BYTES, |_| false);
    for p in 0..20 {
        d.peer_holds(p, PeerHolds::All);
    }
    assert_eq!(d.next_asks(now).len(), IN_FLIGHT);
    assert_eq!(d.in_flight(), IN_FLIGHT);
}

#[test]
fn held_pieces_are_never_asked_for() {
    let now = Instant::now();
    let mut d: Download<u8> = Download::new(4 * PIECE_BYTES, |i| i != 2);
    assert_eq!(d.remaining(), 1);
    d.peer_holds(1, PeerHolds::All);
    let asks = d.next_asks(now);
    assert_eq!(asks, vec![Ask { peer: 1, piece: 2 }]);
    d.done(1, 2, Outcome::Verified, now);
    assert!(d.is_complete());
    assert!(d.next_asks(now).is_empty());
}

/// The download runs to the end with peers that answer in turn, one of
/// which never answers: the endgame gets its pieces from the others.
#[test]
fn endgame_duplicates_the_last_pieces_and_cancels_the_losers() {
    let now = Instant::now();
    let count = 10u64;
    let mut d: Download<u8> = Download::new(count * PIECE_BYTES, |_| false);
    d.peer_holds(1, PeerHolds::All);
    d.peer_holds(2, PeerHolds::All);
    let mut stuck = Vec::new();
    let mut cancelled = Vec::new();
    for _round in 0..100 {
        if d.is_complete() {
            break;
        }
        for a in d.next_asks(now) {
            if a.peer == 2 {
                // Peer 2 never answers.
                stuck.push(a);
            } else {
                cancelled.extend(d.done(a.peer, a.piece, Outcome::Verified, now));
            }
        }
    }
    assert!(d.is_complete(), "{} pieces left", d.remaining());
    // Everything peer 2 was asked for came from peer 1, and peer 2's
    // requests were cancelled.
    assert!(!stuck.is_empty());
    for a in &stuck {
        assert!(cancelled.contains(a), "{a:?} not cancelled");
        assert!(!d.wanted(&a.peer, a.piece));
    }
}

#[test]
fn a_peer_sending_bad_data_is_dropped_and_its_pieces_go_elsewhere() {
    let now = Instant::now();
    let mut d: Download<u8> = Download::new(2 * PIECE_BYTES, |_| false);
    d.peer_holds(1, PeerHolds::All);
    let asks = d.next_asks(now);
    assert_eq!(asks.len(), 2);
    d.done(1, asks[0].piece, Outcome::Corrupt, now);
    // Peer 1 is out for good, even if it says it holds the file again.
    d.peer_holds(1, PeerHolds::All);
    assert!(d.next_asks(now).is_empty());
    d.peer_holds(2, PeerHolds::All);
    let asks = d.next_asks(now);
    assert_eq!(asks.len(), 2);
    assert!(asks.iter().all(|a| a.peer == 2));
}

#[test]
fn a_failing_peer_is_rested_then_asked_again() {
    let now = Instant::now();
    let mut d: Download<u8> = Download::new(PIECE_BYTES, |_| false);
    d.peer_holds(1, PeerHolds::All);
    for _ in 0..3 {
        let a = d.next_asks(now);
        assert_eq!(a.len(), 1);
        d.done(1, a[0].piece, Outcome::Failed, now);
    }
    assert!(d.next_asks(now).is_empty(), "rested");
    assert_eq!(d.next_asks(now + Duration::from_secs(11)).len(), 1);
}

#[test]
fn a_peer_that_leaves_frees_its_requests() {
    let now = Instant::now();
    let mut d: Download<u8> = Download::new(3 * PIECE_BYTES, |_| false);
    d.peer_holds(1, PeerHolds::All);
    assert_eq!(d.next_asks(now).len(), 3);
    d.peer_gone(&1);
    assert_eq!(d.in_flight(), 0);
    d.peer_holds(2, bits(&[0, 2], 3));
    let mut got: Vec<u64> = d.next_asks(now).iter().map(|a| a.piece).collect();
    got.sort();
    assert_eq!(got, vec![0, 2]);
    assert_eq!(d.useful_peers(), 1);
}

/// A terabyte's million pieces: each request looks at a bounded window,
/// so scheduling the first thousand pieces from three holders (one of
/// them partial) stays cheap and never asks for a piece twice.
#[test]
fn a_million_piece_download_schedules_in_bounded_work() {
    let now = Instant::now();
    let count = 1u64 << 20;
    let mut d: Download<u8> = Download::new(count * PIECE_BYTES, |_| false);
    d.peer_holds(1, PeerHolds::All);
    d.peer_holds(2, PeerHolds::All);
    let mut half = vec![0u8; (count / 8) as usize];
    for (i, b) in half.iter_mut().enumerate() {
        if i % 2 == 0 {
            *b = 0xff;
        }
    }
    d.peer_holds(3, PeerHolds::Some(half));
    let mut asked = std::collections::HashSet::new();
    let mut done = 0u64;
    let started = Instant::now();
    while done < 1_000 {
        let asks = d.next_asks(now);
        assert!(!asks.is_empty());
        for a in asks {
            assert!(asked.insert(a.piece), "piece {} asked twice", a.piece);
            d.done(a.peer, a.piece, Outcome::Verified, now);
            done += 1;
        }
    }
    assert_eq!(d.remaining(), count - done);
    // Generous: a scan of every piece per request would take minutes.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// A peer that holds requests without answering is rested at its first
/// timeout, and its pieces go to a peer that answers.
#[test]
fn a_silent_peer_is_rested_at_once() {
    let now = Instant::now();
    let mut d: Download<u8> = Download::new(2 * PIECE_BYTES, |_| false);
    d.peer_holds(1, PeerHolds::All);
    let asks = d.next_asks(now);
    assert_eq!(asks.len(), 2);
    d.done(1, asks[0].piece, Outcome::TimedOut, now);
    d.peer_holds(2, PeerHolds::All);
    let next = d.next_asks(now);
    assert!(next.iter().all(|a| a.peer == 2), "{next:?}");
    assert!(next.iter().any(|a| a.piece == asks[0].piece));
}
