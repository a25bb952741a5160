//! File records: publish, unpublish, readers and quotas.

use palisade_runtime::files::{quota_used, record, FileRecord};
use palisade_runtime::state::Overlay;
use palisade_runtime::{ChainParams, TxError};
use palisade_types::{Action, BoundedString, BoundedVec, FileReaders, Hash, Param, Role};

use crate::chain::*;

fn publish(root: u8, size: u64, readers: FileReaders) -> Action {
    Action::FilePublish {
        root: Hash([root; 32]),
        size,
        name: BoundedString::new("report.pdf").unwrap(),
        media_type: BoundedString::new("application/pdf").unwrap(),
        readers,
        min_replicas: 2,
    }
}

fn rec(c: &Chain, root: u8) -> Option<FileRecord> {
    record(&Overlay::new(&c.store), &Hash([root; 32])).unwrap()
}

fn used(c: &Chain, who: u8) -> u64 {
    quota_used(&Overlay::new(&c.store), &key(who).address()).unwrap()
}

#[test]
fn publish_records_the_file_and_counts_its_size() {
    let mut c = Chain::new();
    let r = c.run(BOB, publish(7, 5_000, FileReaders::Everyone));
    assert!(r.is_success(), "{r:?}");
    assert_eq!(r.events[0].kind, "file_publish");
    let f = rec(&c, 7).unwrap();
    assert_eq!(f.publisher, key(BOB).address());
    assert_eq!(f.size, 5_000);
    assert_eq!(f.name.as_str(), "report.pdf");
    assert_eq!(f.published, c.height);
    assert_eq!(f.unpublished, None);
    assert_eq!(used(&c, BOB), 5_000);
    // The same root again is refused, by anyone.
    let r = c.run(ALICE, publish(7, 5_000, FileReaders::Everyone));
    assert_eq!(r.code, TxError::FileExists.code());
}

#[test]
fn publish_needs_member() {
    let mut c = Chain::new();
    let r = c.run(OPERATOR, publish(1, 10, FileReaders::Everyone));
    assert_eq!(r.code, TxError::Unauthorized("member").code());
    assert!(rec(&c, 1).is_none());
}

#[test]
fn bad_records_are_refused() {
    let mut c = Chain::new();
    let mut bad_name = publish(1, 10, FileReaders::Everyone);
    if let Action::FilePublish { name, .. } = &mut bad_name {
        *name = BoundedString::new("a\nb").unwrap();
    }
    let mut spaced_type = publish(2, 10, FileReaders::Everyone);
    if let Action::FilePublish { media_type, .. } = &mut spaced_type {
        *media_type = BoundedString::new("text /plain").unwrap();
    }
    let mut many_replicas = publish(3, 10, FileReaders::Everyone);
    if let Action::FilePublish { min_replicas, .. } = &mut many_replicas {
        *min_replicas = 65;
    }
    let too_big = publish(4, (1 << 40) + 1, FileReaders::Everyone);
    for a in [bad_name, spaced_type, many_replicas, too_big] {
        let r = c.run(BOB, a);
        assert_eq!(r.code, TxError::FileInvalid("").code(), "{r:?}");
    }
    assert_eq!(used(&c, BOB), 0);
}

#[test]
fn quota_bounds_what_one_account_has_on_record() {
    let mut c = Chain::with_params(ChainParams {
        file_quota_bytes: 10_000,
        ..ChainParams::default()
    });
    assert!(c
        .run(BOB, publish(1, 6_000, FileReaders::Everyone))
        .is_success());
    let r = c.run(BOB, publish(2, 4_001, FileReaders::Everyone));
    assert_eq!(
        r.code,
        TxError::FileQuotaExceeded {
            used: 0,
            size: 0,
            quota: 0
        }
        .code()
    );
    assert!(r.error.contains("6000 bytes on record"), "{}", r.error);
    // Another account has its own quota.
    assert!(c
        .run(ALICE, publish(3, 10_000, FileReaders::Everyone))
        .is_success());
    // Unpublishing gives the bytes back.
    assert!(c
        .run(
            BOB,
            Action::FileUnpublish {
                root: Hash([1; 32])
            }
        )
        .is_success());
    assert_eq!(used(&c, BOB), 0);
    assert!(c
        .run(BOB, publish(2, 10_000, FileReaders::Everyone))
        .is_success());
    // An admin can change the quota.
    let set = Action::SetParam {
        param: Param::FileQuotaBytes(0),
    };
    assert!(c.run(ALICE, set).is_success());
    let r = c.run(BOB, publish(5, 1, FileReaders::Everyone));
    assert_eq!(r.code, 52);
    // Over a lowered quota, the account can still withdraw files.
    assert!(c
        .run(
            BOB,
            Action::FileUnpublish {
                root: Hash([2; 32])
            }
        )
        .is_success());
    assert_eq!(used(&c, BOB), 0);
    // And with nothing on record, an empty file fits a zero quota.
    assert!(c
        .run(BOB, publish(6, 0, FileReaders::Everyone))
        .is_success());
}

#[test]
fn unpublish_by_the_publisher_or_an_admin_only() {
    let mut c = Chain::new();
    assert!(c
        .run(BOB, publish(1, 100, FileReaders::Everyone))
        .is_success());
    let unpub = || Action::FileUnpublish {
        root: Hash([1; 32]),
    };
    // ALICE is an admin; grant CAROL member so she may transact.
    assert!(c
        .run(
            ALICE,
            Action::GrantRole {
                account: key(CAROL).address(),
                role: Role::Member,
            }
        )
        .is_success());
    let r = c.run(CAROL, unpub());
    assert_eq!(r.code, TxError::NotFilePublisher.code());
    assert!(rec(&c, 1).unwrap().unpublished.is_none());
    let r = c.run(ALICE, unpub());
    assert!(r.is_success(), "{r:?}");
    assert_eq!(r.events[0].kind, "file_unpublish");
    let f = rec(&c, 1).unwrap();
    assert_eq!(f.unpublished, Some(c.height), "the record stays, marked");
    assert_eq!(used(&c, BOB), 0, "the publisher's quota is freed");
    let r = c.run(BOB, unpub());
    assert_eq!(r.code, TxError::FileWithdrawn.code());
    let r = c.run(
        BOB,
        Action::FileUnpublish {
            root: Hash([9; 32]),
        },
    );
    assert_eq!(r.code, TxError::FileNotFound.code());
    // A withdrawn root may be published again, by anyone: a new record,
    // counted against the new publisher's quota.
    let r = c.run(ALICE, publish(1, 100, FileReaders::Everyone));
    assert!(r.is_success(), "{r:?}");
    let f = rec(&c, 1).unwrap();
    assert_eq!(f.publisher, key(ALICE).address());
    assert_eq!(f.unpublished, None);
    assert_eq!(used(&c, ALICE), 100);
    assert_eq!(used(&c, BOB), 0);
}

#[test]
fn readers_decide_who_may_read() {
    let mut c = Chain::new();
    let roles = FileReaders::Roles(BoundedVec::new(vec![Role::Minter]).unwrap());
    let accounts = FileReaders::Accounts(BoundedVec::new(vec![key(CAROL).address()]).unwrap());
    assert!(c
        .run(BOB, publish(1, 1, FileReaders::Everyone))
        .is_success());
    assert!(c.run(BOB, publish(2, 1, roles)).is_success());
    assert!(c.run(BOB, publish(3, 1, accounts)).is_success());
    let may = |c: &Chain, root: u8, who: u8| {
        let a = key(who).address();
        let acct = Overlay::new(&c.store).account(&a).unwrap();
        rec(c, root).unwrap().may_read(&a, acct.as_ref())
    };
    // Everyone: even an address with no account.
    assert!(may(&c, 1, 99));
    // Roles: ALICE is a minter, CAROL is not; the publisher always is.
    assert!(may(&c, 2, ALICE));
    assert!(!may(&c, 2, CAROL));
    assert!(may(&c, 2, BOB));
    // Accounts.
    assert!(may(&c, 3, CAROL));
    assert!(!may(&c, 3, ALICE));
    // Unpublished: nobody, the publisher included.
    assert!(c
        .run(
            BOB,
            Action::FileUnpublish {
                root: Hash([1; 32])
            }
        )
        .is_success());
    assert!(!may(&c, 1, BOB));
    assert!(!may(&c, 1, 99));
}
