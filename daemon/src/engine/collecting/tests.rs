//! Tests of the parent module.

use super::*;
use crate::engine::auth::AuthenticatedCustodian;
use crate::engine::policy::Policy;
use crate::engine::share::tests::verified;
use proptest::prelude::*;
use rand::SeedableRng;

pub const T0: u64 = 1_000_000;

pub fn params() -> OpenParams {
    OpenParams {
        id: "req-1".into(),
        daemon_id: "d".into(),
        requester: "ic".into(),
        scope: "prod-ssh".into(),
        reason: "db down".into(),
        ttl_seconds: 600,
        window_seconds: 900,
        threshold: 3,
        ssh_public_key: String::new(),
        kinds: vec!["token".into()],
        principals: vec![],
        ssh_extensions: vec![],
        kind: crate::engine::request::Kind::Access,
        change: None,
    }
}

pub fn opened() -> Collecting {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (c, recs) = Collecting::open(params(), &mut rng, T0).unwrap();
    assert_eq!(recs.len(), 1);
    assert!(matches!(recs[0].event, Event::RequestOpened { .. }));
    c
}

fn share(i: u8) -> VerifiedShare {
    verified(&AuthenticatedCustodian::for_tests(&format!("c{i}"), i))
}

fn cred() -> StoredCredential {
    StoredCredential {
        expires_at: T0 + 600,
        sealed: vec![1],
        ssh_serial: None,
        ssh_key_id: None,
        valid_from: None,
    }
}

fn ok(_: &Request, _: Vec<Record>) -> Result<()> {
    Ok(())
}

fn fail(_: &Request, _: Vec<Record>) -> Result<()> {
    Err(Error::Storage("disk full".into()))
}

/// The policy the state tests admit shares under (custodians c1..c6).
fn policy() -> Policy {
    Policy::from_toml(&crate::engine::policy::tests::sample_toml(6, 3)).unwrap()
}

/// Admits custodian `ci`'s share at `now`, then accepts it (the only way in).
fn take(
    c: Collecting,
    i: u8,
    now: u64,
    commit: impl FnOnce(&Request, Vec<Record>) -> Result<()>,
) -> std::result::Result<Accepted, Refused<Collecting>> {
    match c.admit(&policy(), &format!("c{i}"), now) {
        Ok(a) => c.accept(a, share(i), commit),
        Err(error) => Err(Refused { state: c, error }),
    }
}

fn more(a: std::result::Result<Accepted, Refused<Collecting>>) -> Collecting {
    match a {
        Ok(Accepted::Collecting(c)) => c,
        _ => panic!("expected collecting"),
    }
}

fn quorum(a: std::result::Result<Accepted, Refused<Collecting>>) -> QuorumReached {
    match a {
        Ok(Accepted::Quorum(q)) => q,
        _ => panic!("expected a quorum"),
    }
}

#[test]
fn open_sets_deadline_digest_and_a_fresh_key() {
    let c = opened();
    let r = c.request();
    assert_eq!(r.state, State::Collecting);
    assert_eq!(r.deadline, T0 + 900);
    assert_ne!(r.digest, [0; 32]);
    assert_eq!(
        PublicKey::from(c.ephemeral.as_ref()).to_bytes(),
        r.ephemeral_public
    );
    let mut other = rand::rngs::StdRng::seed_from_u64(8);
    let (d, _) = Collecting::open(params(), &mut other, T0).unwrap();
    assert_ne!(d.request().ephemeral_public, r.ephemeral_public);
}

#[test]
fn open_rejects_empty_and_long_reason() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for bad in ["  ".to_string(), "x".repeat(2000)] {
        let mut p = params();
        p.reason = bad;
        assert!(matches!(
            Collecting::open(p, &mut rng, T0),
            Err(Error::InvalidArgument {
                field: "reason",
                ..
            })
        ));
    }
}

/// Invariant 2: only the share that brings the count to `threshold` reaches a
/// quorum, and only a quorum unlocks.
#[test]
fn collecting_to_unlocked() {
    let c = more(take(opened(), 1, T0 + 1, ok));
    let c = more(take(c, 2, T0 + 2, ok));
    assert_eq!(c.shares.len(), 2);
    let q = quorum(take(c, 3, T0 + 3, ok));
    assert_eq!(q.request().approvals.len(), 3);
    let mut kept = Vec::new();
    let u = q
        .unlock(
            T0 + 3,
            |_, quorum| {
                assert_eq!(quorum.shares().len(), 3);
                Ok((cred(), vec!["paseto".into()]))
            },
            |_, recs| {
                kept = recs;
                Ok(())
            },
        )
        .ok()
        .unwrap();
    assert_eq!(u.state, State::Unlocked);
    let kinds: Vec<&str> = kept.iter().map(|r| r.event.kind()).collect();
    assert_eq!(
        kinds,
        ["share_accepted", "quorum_reached", "credential_minted"]
    );
}

/// Invariant 2 for drills: a drill's quorum rebuilds the key (the signer gets
/// the quorum) and ends in `DrillPassed` with `drill_passed` instead of
/// `quorum_reached`; it can never be unlocked, and an access request can never
/// be rehearsed. Its digest is not an access digest.
#[test]
fn a_drill_passes_and_never_mints() {
    use crate::engine::request::Kind;
    let open_drill = || {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let p = OpenParams {
            kind: Kind::Drill,
            scope: String::new(),
            ttl_seconds: 0,
            kinds: vec![],
            ..params()
        };
        let (c, recs) = Collecting::open(p, &mut rng, T0).unwrap();
        assert_eq!(recs[0].event.kind(), "drill_opened");
        c
    };
    assert_ne!(open_drill().request().digest, opened().request().digest);
    let to_quorum = |c: Collecting| {
        let c = more(take(c, 1, T0 + 1, ok));
        let c = more(take(c, 2, T0 + 2, ok));
        quorum(take(c, 3, T0 + 3, ok))
    };
    let refused = to_quorum(open_drill()).unlock(T0 + 3, |_, _| Ok((cred(), vec![])), ok);
    let Err(refused) = refused else {
        panic!("a drill was unlocked")
    };
    assert!(refused.error.to_string().contains("mints nothing"));
    let mut kept = Vec::new();
    let d = to_quorum(open_drill())
        .rehearse(
            T0 + 3,
            |_, quorum| {
                assert_eq!(quorum.shares().len(), 3);
                Ok(("{}".into(), 1))
            },
            |_, recs| {
                kept = recs;
                Ok(())
            },
        )
        .ok()
        .unwrap();
    assert_eq!(d.state, State::DrillPassed);
    assert!(d.credential.is_none());
    assert_eq!(d.drill_statement.as_deref(), Some("{}"));
    let kinds: Vec<&str> = kept.iter().map(|r| r.event.kind()).collect();
    assert_eq!(kinds, ["share_accepted", "drill_passed"]);
    let access = to_quorum(opened()).rehearse(T0 + 3, |_, _| Ok(("{}".into(), 1)), ok);
    assert!(access.is_err(), "an access request was rehearsed");
}

/// A change request (DESIGN.md "Epochs"): its own digest domain, approved like
/// an access request, never minted or rehearsed; its quorum ends it as the
/// change its summary calls for, and nothing else.
#[test]
fn a_change_applies_or_deals_as_its_summary_says_and_never_mints() {
    use crate::engine::request::{ChangeRecord, Kind};
    let current = policy();
    let open_change = |proposed: &Policy| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let summary = breakglass_formats::change::summarize(
            &current.canonical_json().unwrap(),
            &proposed.canonical_json().unwrap(),
        )
        .unwrap();
        let p = OpenParams {
            kind: Kind::Change,
            requester: "c6".into(),
            scope: String::new(),
            ttl_seconds: 0,
            kinds: vec![],
            change: Some(ChangeRecord {
                epoch: 1,
                current_policy_digest: current.digest().unwrap(),
                new_policy_digest: proposed.digest().unwrap(),
                new_policy: proposed.clone(),
                current_policy: current.clone(),
                summary,
            }),
            ..params()
        };
        let (c, recs) = Collecting::open(p, &mut rng, T0).unwrap();
        assert_eq!(recs[0].event.kind(), "change_proposed");
        c
    };
    let mut longer = policy();
    longer.collection_window_seconds = 1800;
    let longer = longer.validated().unwrap();
    let fewer = Policy::from_toml(&crate::engine::policy::tests::sample_toml(5, 3)).unwrap();
    assert_ne!(
        open_change(&longer).request().digest,
        opened().request().digest
    );
    assert_ne!(
        open_change(&longer).request().digest,
        open_change(&fewer).request().digest
    );

    // Separation of duties: the proposer (c6) cannot approve her own change.
    let e = open_change(&longer).admit(&policy(), "c6", T0 + 1).err();
    assert!(matches!(e, Some(Error::OwnRequest { .. })), "{e:?}");

    let to_quorum = |c: Collecting| {
        let c = more(take(c, 1, T0 + 1, ok));
        let c = more(take(c, 2, T0 + 2, ok));
        quorum(take(c, 3, T0 + 3, ok))
    };
    let refused = to_quorum(open_change(&longer)).unlock(T0 + 3, |_, _| Ok((cred(), vec![])), ok);
    assert!(refused
        .err()
        .is_some_and(|r| r.error.to_string().contains("mints nothing")));
    let rehearsed =
        to_quorum(open_change(&longer)).rehearse(T0 + 3, |_, _| Ok(("{}".into(), 1)), ok);
    assert!(rehearsed.is_err(), "a change was rehearsed");

    // A policy-only change may only be re-sealed; the wrong outcome goes back to collecting.
    let wrong = to_quorum(open_change(&longer)).change(
        T0 + 3,
        |_, _| {
            Ok(Applied::Dealt {
                epoch: 2,
                need: 6,
                deadline: T0 + 99,
            })
        },
        ok,
    );
    let Err(back) = wrong else {
        panic!("a policy-only change was dealt")
    };
    assert!(
        back.error.to_string().contains("needs no new shares"),
        "{}",
        back.error
    );
    assert_eq!(
        back.state.request().approvals.len(),
        2,
        "the completing share was dropped"
    );

    let mut kept = Vec::new();
    let applied = to_quorum(open_change(&longer))
        .change(
            T0 + 3,
            |_, q| {
                assert_eq!(q.shares().len(), 3);
                Ok(Applied::Resealed {
                    cancelled: vec!["req-x".into()],
                })
            },
            |_, recs| {
                kept = recs;
                Ok(())
            },
        )
        .ok()
        .unwrap();
    assert_eq!(applied.state, State::ChangeApplied);
    assert!(applied.credential.is_none());
    let kinds: Vec<&str> = kept.iter().map(|r| r.event.kind()).collect();
    assert_eq!(kinds, ["share_accepted", "change_applied"]);

    // A change of custodians is dealt, never re-sealed.
    let resealed = to_quorum(open_change(&fewer)).change(
        T0 + 3,
        |_, _| Ok(Applied::Resealed { cancelled: vec![] }),
        ok,
    );
    assert!(resealed.is_err(), "a rekey was re-sealed");
    let dealt = to_quorum(open_change(&fewer))
        .change(
            T0 + 3,
            |_, _| {
                Ok(Applied::Dealt {
                    epoch: 2,
                    need: 5,
                    deadline: T0 + 99,
                })
            },
            ok,
        )
        .ok()
        .unwrap();
    assert_eq!(dealt.state, State::ChangeDealt);
    assert!(
        dealt.close_reason.contains("epoch 2 was dealt"),
        "{}",
        dealt.close_reason
    );

    // An access request is no change.
    assert!(to_quorum(opened())
        .change(
            T0 + 3,
            |_, _| Ok(Applied::Resealed { cancelled: vec![] }),
            ok
        )
        .is_err());
}

/// Nothing lost: a failed commit leaves the state as it was, with its shares.
#[test]
fn failed_commit_keeps_the_state() {
    let c = more(take(opened(), 1, T0 + 1, ok));
    let back = match take(c, 2, T0 + 2, fail) {
        Err(r) => r.state,
        Ok(_) => panic!("accepted despite a failed commit"),
    };
    assert_eq!(back.request().approvals.len(), 1);
    assert_eq!(back.shares.len(), 1);
    let c = more(take(back, 2, T0 + 2, ok));
    let q = quorum(take(c, 3, T0 + 3, ok));
    let back = match q.unlock(T0 + 3, |_, _| Ok((cred(), vec![])), fail) {
        Err(r) => r.state,
        Ok(_) => panic!("unlocked despite a failed commit"),
    };
    assert_eq!(back.request().approvals.len(), 2);
    assert_eq!(back.shares.len(), 2);
    let q = quorum(take(back, 3, T0 + 4, ok));
    let failed = q.unlock(T0 + 4, |_, _| Err(Error::Reconstruction("bad".into())), ok);
    assert!(matches!(
        failed,
        Err(Refused {
            error: Error::Reconstruction(_),
            ..
        })
    ));
}

#[test]
fn duplicate_custodian_refused() {
    let c = more(take(opened(), 1, T0, ok));
    let p =
        crate::engine::policy::Policy::from_toml(&crate::engine::policy::tests::sample_toml(3, 2))
            .unwrap();
    assert!(matches!(
        c.admit(&p, "c1", T0),
        Err(Error::DuplicateShare { .. })
    ));
    assert!(matches!(
        take(c, 1, T0, ok),
        Err(Refused {
            error: Error::DuplicateShare { .. },
            ..
        })
    ));
}

/// Invariant 7 (time-boxed): no share is admitted at or after the deadline,
/// and expiry happens only then.
#[test]
fn window_and_expiry_with_injected_clock() {
    let p =
        crate::engine::policy::Policy::from_toml(&crate::engine::policy::tests::sample_toml(3, 2))
            .unwrap();
    let c = opened();
    assert!(c.admit(&p, "c1", T0 + 899).is_ok());
    assert!(matches!(
        c.admit(&p, "c1", T0 + 900),
        Err(Error::WindowClosed { .. })
    ));
    let c = match c.expire(T0 + 899, ok) {
        Err(r) => r.state,
        Ok(_) => panic!("expired early"),
    };
    let mut kept = Vec::new();
    let e = c
        .expire(T0 + 900, |_, recs| {
            kept = recs;
            Ok(())
        })
        .ok()
        .unwrap();
    assert_eq!(e.state, State::Expired);
    assert!(matches!(
        kept[0].event,
        Event::RequestExpired { accepted: 0 }
    ));
    assert!(matches!(
        e.closed_error(),
        Error::RequestClosed {
            state: "expired",
            ..
        }
    ));
}

#[test]
fn cancel_and_abandon() {
    let c = opened().cancel("ic", "resolved", T0 + 5, ok).ok().unwrap();
    assert_eq!(c.state, State::Cancelled);
    assert_eq!(c.close_reason, "cancelled by ic: resolved");
    let (a, recs) = opened().abandon(T0 + 1, "daemon stopped");
    assert_eq!(a.state, State::Cancelled);
    assert!(matches!(recs[0].event, Event::RequestCancelled { .. }));
}

#[derive(Debug, Clone)]
enum Step {
    Share(u8),
    Cancel,
    Tick(u64),
    Expire,
    FailNext,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u8..=6).prop_map(Step::Share),
        Just(Step::Cancel),
        (0u64..400).prop_map(Step::Tick),
        Just(Step::Expire),
        Just(Step::FailNext),
    ]
}

#[allow(clippy::large_enum_variant)]
enum Now {
    Live(Collecting),
    Done(Request),
}

proptest! {
    /// Invariants 2 and 7 under random event sequences, with failing commits:
    /// never more than one credential, never an unlock below threshold,
    /// terminal states stay terminal, nothing accepted after the deadline,
    /// and the live state always matches what was last committed.
    #[test]
    fn random_sequences_keep_invariants(steps in proptest::collection::vec(step(), 0..40)) {
        let mut st = Now::Live(opened());
        let mut now = T0;
        let mut minted = 0;
        let mut fail_next = false;
        let mut committed: Option<Request> = None;
        for s in steps {
            let fail = fail_next;
            let commit = move |_: &Request, _: Vec<Record>| -> Result<()> {
                if fail { Err(Error::Storage("x".into())) } else { Ok(()) }
            };
            st = match (st, s) {
                (st, Step::Tick(d)) => { now += d; st }
                (st, Step::FailNext) => { fail_next = !fail_next; st }
                (Now::Done(r), _) => Now::Done(r),
                (Now::Live(c), Step::Expire) => {
                    if !c.is_due(now) { Now::Live(c) } else {
                        match c.expire(now, commit) { Ok(r) => Now::Done(r), Err(r) => Now::Live(r.state) }
                    }
                }
                (Now::Live(c), Step::Cancel) => match c.cancel("ic", "x", now, commit) {
                    Ok(r) => Now::Done(r), Err(r) => Now::Live(r.state)
                },
                (Now::Live(c), Step::Share(i)) => match take(c, i, now, commit) {
                    Err(r) => Now::Live(r.state),
                    Ok(Accepted::Collecting(c)) => Now::Live(c),
                    Ok(Accepted::Quorum(q)) => {
                        prop_assert!(q.request().approvals.len() as u32 >= q.request().threshold);
                        match q.unlock(now, |_, _| Ok((cred(), vec![])), commit) {
                            Ok(r) => { minted += 1; Now::Done(r) }
                            Err(r) => Now::Live(r.state),
                        }
                    }
                },
            };
            let r = match &st { Now::Live(c) => { prop_assert_eq!(c.shares.len(), c.request().approvals.len()); c.request().clone() } Now::Done(r) => r.clone() };
            if let Some(before) = &committed {
                if before.state.is_terminal() {
                    prop_assert_eq!(before, &r, "terminal state changed");
                }
            }
            if r.state == State::Unlocked {
                prop_assert!(r.approvals.len() as u32 >= r.threshold);
            }
            for a in &r.approvals {
                prop_assert!(a.at < r.deadline);
            }
            prop_assert!(minted <= 1);
            committed = Some(r);
        }
    }
}
