use std::time::Duration;

use palisade_node::sync::{should_fetch, SyncConfig};

#[test]
fn blocks_are_fetched_when_consensus_cannot_catch_up_by_itself() {
    let grace = Duration::from_millis(300);
    let ms = Duration::from_millis;
    // (committed, peer's height, behind for, fetch?)
    let table: &[(u64, u64, Option<Duration>, bool)] = &[
        // Level with the peers, or ahead of the one that answered.
        (5, 5, None, false),
        (5, 4, None, false),
        // One behind: the last precommits may be in flight.
        (5, 6, Some(ms(0)), false),
        (5, 6, Some(ms(299)), false),
        // One behind for the grace: this height's messages went by.
        (5, 6, Some(ms(300)), true),
        (5, 6, Some(ms(5_000)), true),
        // Two or more behind: at once.
        (5, 7, Some(ms(0)), true),
        (0, 1_000, None, true),
        // No overflow at the top of the range.
        (u64::MAX, u64::MAX, None, false),
        (u64::MAX - 1, u64::MAX, Some(ms(300)), true),
    ];
    for &(committed, target, behind_for, fetch) in table {
        assert_eq!(
            should_fetch(committed, target, behind_for, grace),
            fetch,
            "committed {committed}, peer at {target}, behind for {behind_for:?}"
        );
    }
}

#[test]
fn one_block_behind_is_fetched_well_before_a_propose_timeout() {
    let cfg = SyncConfig::default();
    let propose = palisade_consensus::TimeoutConfig::default().propose_ms;
    assert!(cfg.behind_grace < Duration::from_millis(propose / 2));
    assert!(cfg.behind_grace < cfg.poll_interval);
}
