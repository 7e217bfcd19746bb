//! Tests of the parent module: each refusal with its message, and a property
//! test of the epoch state machine with real dealing (a new R split, S sealed
//! under it, share files age-encrypted to the custodians and decrypted here
//! with their keys).

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use zeroize::Zeroizing;

use super::*;
use crate::crypto::authority::AuthorityKey;
use crate::crypto::deal::{deal, Dealer};
use crate::crypto::secret::AuthoritySeed;
use crate::crypto::{seal, shamir};
use crate::engine::policy::tests::{identity, key, ssh_line};
use breakglass_formats::share_file::ShareFile;

const CEREMONY: &str = "cer";
const DAEMON: &str = "d";
const T0: u64 = 1_000_000;
const WINDOW: u64 = 7 * 86_400;

/// A policy with custodians `c{i}` for each `i` in `ids` (key seed `i`), threshold `k`.
fn policy(ids: &[u8], k: u8, window: &str) -> Policy {
    let mut s = format!(
        "threshold = {k}\ncollection_window = \"{window}\"\nmax_ttl = \"1h\"\n\n[[scopes]]\nname = \"prod-ssh\"\nprincipals = [\"root\"]\n\n"
    );
    for i in ids {
        s.push_str(&format!(
            "[[custodians]]\nid = \"c{i}\"\nssh_key = \"{}\"\n\n",
            ssh_line(&key(*i))
        ));
    }
    s.push_str(&format!(
        "[[commanders]]\nid = \"ic\"\nssh_key = \"{}\"\nscopes = [\"prod-ssh\"]\n",
        ssh_line(&key(100))
    ));
    Policy::from_toml(&s).unwrap_or_else(|e| panic!("{e}"))
}

fn seed_of(id: &str) -> u8 {
    id.trim_start_matches('c')
        .parse()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// What a custodian reads from her share file: checked offline against D, then the share.
fn open_file(id: &str, file: &[u8], d: &SigningKey, epoch: u64) -> Zeroizing<Vec<u8>> {
    let plain = breakglass_formats::envelope::decrypt(&identity(seed_of(id)), file)
        .unwrap_or_else(|e| panic!("{e}"));
    let f = ShareFile::parse(&plain).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.epoch(), epoch);
    assert_eq!(f.custodian_id, id);
    f.check_origin(Some(&d.verifying_key().to_bytes()))
        .unwrap_or_else(|e| panic!("{e}"));
    f.share_bytes().unwrap_or_else(|e| panic!("{e}"))
}

fn share_bytes(b: &[u8]) -> shamir::ShareBytes {
    let mut s = Zeroizing::new([0u8; breakglass_proto::transport::SHARE_LEN]);
    s.copy_from_slice(b);
    shamir::ShareBytes(s)
}

/// The world of one daemon: S and A, D, the chain, and every custodian's
/// decrypted shares by epoch (what the custodians hold, not what the daemon keeps).
struct World {
    seed: AuthoritySeed,
    authority: [u8; 32],
    d: SigningKey,
    chain: Chain,
    held: BTreeMap<u64, BTreeMap<String, Zeroizing<Vec<u8>>>>,
    changes: u32,
}

impl World {
    fn new(ids: &[u8], k: u8) -> World {
        let seed = AuthoritySeed::generate();
        let authority = AuthorityKey::derive(&seed).public().to_bytes();
        let d = SigningKey::from_bytes(&[9; 32]);
        let p = policy(ids, k, "15m");
        let (pending, held) = Self::dealt(&seed, &authority, &d, p, 1, "genesis");
        let current = Epoch {
            number: 1,
            policy: pending.policy.clone(),
            policy_digest: pending.policy_digest,
            seal: pending.seal.clone(),
            commitments: pending
                .shares
                .iter()
                .map(|(id, s)| (id.clone(), s.commitment.clone()))
                .collect(),
            share_signatures: BTreeMap::new(),
            since: T0,
        };
        World {
            seed,
            authority,
            d,
            chain: Chain {
                current,
                pending: None,
            },
            held: BTreeMap::from([(1, held)]),
            changes: 0,
        }
    }

    fn dealt(
        seed: &AuthoritySeed,
        authority: &[u8; 32],
        d: &SigningKey,
        p: Policy,
        number: u64,
        change: &str,
    ) -> (Pending, BTreeMap<String, Zeroizing<Vec<u8>>>) {
        let digest = p.digest().unwrap_or_else(|e| panic!("{e}"));
        let dealt = deal(
            seed,
            &p,
            &digest,
            Lineage {
                ceremony_id: CEREMONY,
                epoch: number,
            },
            &Dealer {
                daemon_id: DAEMON,
                key: d,
                authority,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let held = dealt
            .shares
            .iter()
            .map(|s| {
                (
                    s.custodian.clone(),
                    open_file(&s.custodian, &s.file, d, number),
                )
            })
            .collect();
        let pending = Pending::new(
            crate::store::epochs::tests::dealing(dealt, change, number, p, digest),
            ConfirmRule::All,
            T0,
            WINDOW,
        );
        (pending, held)
    }

    /// Rebuilds R from `k` of the shares held for the current epoch and opens
    /// its seal: it must give the one S (so A never changes).
    fn check_current_opens(&self) {
        let e = &self.chain.current;
        let held = &self.held[&e.number];
        let shares: Vec<shamir::ShareBytes> = held
            .values()
            .take(usize::from(e.policy.threshold))
            .map(|b| share_bytes(b))
            .collect();
        let root = shamir::combine_split(&shares).unwrap_or_else(|e| panic!("{e}"));
        let s = seal::unseal(
            &root,
            &e.seal,
            &seal::Binding {
                ceremony_id: CEREMONY,
                epoch: e.number,
                policy_digest: &e.policy_digest,
            },
        )
        .unwrap_or_else(|err| panic!("epoch {} does not open with its shares: {err}", e.number));
        assert_eq!(AuthorityKey::derive(&s).public().to_bytes(), self.authority);
        // Every committed share verifies against its epoch's commitment.
        for (id, b) in held {
            let who = AuthenticatedCustodian::for_tests(id, b[0]);
            let lineage = Lineage {
                ceremony_id: CEREMONY,
                epoch: e.number,
            };
            assert!(verify_share(&who, &e.commitments[id], lineage, b).is_ok());
        }
    }

    /// A policy-only change: R rebuilt from the held shares, S re-sealed under it.
    fn policy_only(&mut self, window: &str) -> Result<()> {
        let e = self.chain.current.clone();
        let ids: Vec<u8> = e.policy.custodians.iter().map(|c| seed_of(&c.id)).collect();
        let p = policy(&ids, e.policy.threshold, window);
        let digest = p.digest()?;
        let shares: Vec<shamir::ShareBytes> = self.held[&e.number]
            .values()
            .take(usize::from(e.policy.threshold))
            .map(|b| share_bytes(b))
            .collect();
        let root = shamir::combine_split(&shares)?;
        let old = seal::Binding {
            ceremony_id: CEREMONY,
            epoch: e.number,
            policy_digest: &e.policy_digest,
        };
        let s = seal::unseal(&root, &e.seal, &old)?;
        let new = seal::Binding {
            policy_digest: &digest,
            ..old
        };
        let sealed = seal::seal(&root, &s, &new)?;
        self.chain.reseal(p, digest, sealed)
    }
}

#[test]
fn refusals_name_what_is_wrong() {
    let mut w = World::new(&[1, 2, 3, 4, 5], 3);
    let (p, held) = World::dealt(
        &w.seed,
        &w.authority,
        &w.d,
        policy(&[1, 2, 3, 4, 6, 7], 4, "15m"),
        2,
        "chg-1",
    );
    w.chain.begin(p).unwrap_or_else(|e| panic!("{e}"));

    // A second change while one is confirming names the open one.
    let (p2, _) = World::dealt(
        &w.seed,
        &w.authority,
        &w.d,
        policy(&[1, 2, 3], 2, "15m"),
        2,
        "chg-2",
    );
    let err = w.chain.begin(p2).err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("change `chg-1` is waiting for its new custodians to confirm epoch 2; cancel it (`breakglass policy cancel chg-1`) or let it commit before proposing another"));
    assert!(
        w.policy_only("20m").is_err(),
        "no re-seal while a rekey is open"
    );

    fn pending(w: &mut World) -> &mut Pending {
        w.chain
            .pending
            .as_mut()
            .unwrap_or_else(|| panic!("pending"))
    }
    // Fetching or confirming as someone who is not a new custodian.
    let e = pending(&mut w)
        .fetch("c5", T0 + 1)
        .err()
        .map(|e| e.to_string());
    assert_eq!(e.as_deref(), Some("`c5` is not a custodian of the pending epoch 2; only its custodians fetch and confirm its new shares"));
    // A share that fails its new commitment names the custodian.
    let c6 = AuthenticatedCustodian::for_tests("c6", held["c6"][0]);
    let mut wrong = held["c6"].clone();
    wrong[5] ^= 1;
    let e = pending(&mut w).confirm(&c6, CEREMONY, &wrong, T0 + 1).err();
    assert!(
        matches!(e, Some(Error::ShareCommitmentMismatch { ref custodian }) if custodian == "c6")
    );
    // The old epoch's share of a remaining custodian fails the new commitment too.
    let c1 = AuthenticatedCustodian::for_tests("c1", held["c1"][0]);
    let old = w.held[&1]["c1"].clone();
    let e = pending(&mut w).confirm(&c1, CEREMONY, &old, T0 + 1).err();
    assert!(
        matches!(e, Some(Error::ShareCommitmentMismatch { .. })),
        "{e:?}"
    );
    // Nothing was counted.
    assert_eq!(pending(&mut w).progress().confirmed, 0);

    // A good confirmation counts once.
    let p = pending(&mut w);
    assert!(p.fetch("c6", T0 + 1).is_ok());
    assert_eq!(
        p.confirm(&c6, CEREMONY, &held["c6"], T0 + 2).ok(),
        Some(Progress {
            confirmed: 1,
            need: 6
        })
    );
    let e = p
        .confirm(&c6, CEREMONY, &held["c6"], T0 + 3)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("custodian `c6` already confirmed her share of epoch 2; each custodian confirms once")
    );
    // Not ready: commit refused with the count.
    let e = w
        .chain
        .commit(BTreeMap::new(), T0 + 3)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("the pending epoch 2 has 1 of the 6 confirmations it needs; nothing was committed")
    );
    assert_eq!(w.chain.current.number, 1);

    // After the deadline: fetch and confirm refused, and the sweep expires it.
    let late = T0 + WINDOW;
    let c7 = AuthenticatedCustodian::for_tests("c7", held["c7"][0]);
    let e = pending(&mut w)
        .confirm(&c7, CEREMONY, &held["c7"], late)
        .err()
        .map(|e| e.to_string());
    assert_eq!(e.as_deref(), Some("the pending epoch 2 stopped waiting for confirmations at 1970-01-19T13:46:40Z (0s ago); the current epoch stays: propose the change again"));
    assert!(pending(&mut w).sweep(late));
    let p = pending(&mut w);
    assert_eq!(p.state, PendingState::Expired);
    assert!(
        p.shares.values().all(|s| s.file.is_none()),
        "share files deleted"
    );
    let e = p.fetch("c6", late + 1).err().map(|e| e.to_string());
    assert_eq!(e.as_deref(), Some("the pending epoch 2 is expired (1 of the 6 confirmations it needed arrived before its deadline); it takes no more fetches or confirmations; the current epoch stays"));
    assert!(
        p.cancel("too late", late + 1).is_err(),
        "terminal stays terminal"
    );
    assert_eq!(w.chain.current.number, 1);
    w.check_current_opens();
}

#[test]
fn a_threshold_commit_keeps_the_unconfirmed_files_until_the_deadline() {
    let w = World::new(&[1, 2, 3], 2);
    let (mut p, held) = World::dealt(
        &w.seed,
        &w.authority,
        &w.d,
        policy(&[1, 2, 4], 2, "15m"),
        2,
        "chg",
    );
    p.need = ConfirmRule::Threshold.need(3, 2);
    let mut chain = w.chain.clone();
    chain.begin(p).unwrap_or_else(|e| panic!("{e}"));
    for id in ["c1", "c4"] {
        let who = AuthenticatedCustodian::for_tests(id, held[id][0]);
        let pending = chain.pending.as_mut().unwrap_or_else(|| panic!("pending"));
        assert!(pending.confirm(&who, CEREMONY, &held[id], T0 + 1).is_ok());
    }
    assert_eq!(
        chain.commit(BTreeMap::new(), T0 + 2).map(|e| e.number).ok(),
        Some(2)
    );
    let pending = chain.pending.as_mut().unwrap_or_else(|| panic!("pending"));
    assert!(
        pending.fetch("c2", T0 + 3).is_ok(),
        "c2 can still fetch hers"
    );
    assert!(matches!(
        pending.fetch("c1", T0 + 3),
        Err(Error::AlreadyConfirmed { .. })
    ));
    assert!(pending.sweep(T0 + WINDOW));
    assert_eq!(
        pending.state,
        PendingState::Committed,
        "a commit stays a commit"
    );
    assert!(pending.fetch("c2", T0 + WINDOW).is_err());
}

#[derive(Debug, Clone)]
enum Step {
    /// Propose a rekey to custodians `ids` (seeds) with threshold `k`; confirmed
    /// by all new custodians, or by a threshold of them.
    Rekey(Vec<u8>, u8, ConfirmRule),
    /// Propose a policy-only change.
    PolicyOnly,
    /// A new custodian (by index) confirms, with her real share or a damaged one.
    Confirm(usize, bool),
    Fetch(usize),
    Commit,
    Cancel,
    Tick(u64),
    Sweep,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (
            proptest::sample::subsequence((1u8..=7).collect::<Vec<_>>(), 2..=5),
            2u8..=5,
            proptest::bool::ANY,
        )
            .prop_map(|(ids, k, all)| {
                let k = k.min(u8::try_from(ids.len()).unwrap_or(2));
                let rule = if all { ConfirmRule::All } else { ConfirmRule::Threshold };
                Step::Rekey(ids, k, rule)
            }),
        1 => Just(Step::PolicyOnly),
        8 => (0usize..5, proptest::bool::weighted(0.8)).prop_map(|(i, good)| Step::Confirm(i, good)),
        1 => (0usize..5).prop_map(Step::Fetch),
        3 => Just(Step::Commit),
        1 => Just(Step::Cancel),
        1 => (1u64..3 * 86_400).prop_map(Step::Tick),
        1 => Just(Step::Sweep),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// DESIGN.md "Epochs" under random sequences of proposals, confirmations,
    /// commits, cancels and expiries: never two committed epochs at once (the
    /// epoch numbers a quorum can unlock are one, and they only rise by one per
    /// rekey); never an epoch without a seal that opens with its shares to the
    /// same A; terminal pending states stay terminal, with their files deleted.
    #[test]
    fn the_epoch_state_machine_keeps_its_invariants(steps in proptest::collection::vec(step(), 0..48)) {
        let mut w = World::new(&[1, 2, 3], 2);
        let mut now = T0;
        let mut rekeys = 0u64;
        let mut closed: BTreeMap<String, PendingState> = BTreeMap::new();
        for s in steps {
            let before = w.chain.current.number;
            match s {
                Step::Rekey(ids, k, rule) => {
                    let open = w.chain.open().is_some();
                    w.changes += 1;
                    let change = format!("chg-{}", w.changes);
                    let (mut p, held) = World::dealt(&w.seed, &w.authority, &w.d, policy(&ids, k, "15m"), before + 1, &change);
                    p.dealt_at = now;
                    p.deadline = now + WINDOW;
                    p.need = rule.need(ids.len(), k);
                    let r = w.chain.begin(p);
                    prop_assert_eq!(r.is_ok(), !open, "a second open change is refused");
                    if r.is_ok() {
                        w.held.insert(before + 1, held);
                    }
                }
                Step::PolicyOnly => {
                    let open = w.chain.open().is_some();
                    let window = format!("{}m", 10 + w.changes);
                    w.changes += 1;
                    let r = w.policy_only(&window);
                    prop_assert_eq!(r.is_ok(), !open);
                }
                Step::Confirm(i, good) => {
                    if let Some(p) = w.chain.pending.as_mut() {
                        if let Some(id) = p.shares.keys().nth(i % p.shares.len()).cloned() {
                            let mut share = w.held[&p.number][&id].clone();
                            if !good { share[1] ^= 0x80; }
                            let was = p.progress().confirmed;
                            let expect = good
                                && p.state == PendingState::Confirming
                                && now < p.deadline
                                && p.shares[&id].confirmed_at.is_none();
                            let who = AuthenticatedCustodian::for_tests(&id, share[0]);
                            let r = p.confirm(&who, CEREMONY, &share, now);
                            prop_assert_eq!(r.is_ok(), expect);
                            prop_assert_eq!(p.progress().confirmed, was + usize::from(expect));
                        }
                    }
                }
                Step::Fetch(i) => {
                    if let Some(p) = w.chain.pending.as_mut() {
                        if let Some(id) = p.shares.keys().nth(i % p.shares.len()).cloned() {
                            if let Ok(file) = p.fetch(&id, now) {
                                prop_assert!(p.state == PendingState::Confirming || p.state == PendingState::Committed);
                                let got = open_file(&id, &file, &w.d, p.number);
                                prop_assert_eq!(&got[..], &w.held[&p.number][&id][..]);
                            }
                        }
                    }
                }
                Step::Commit => {
                    let ready = w.chain.open().is_some_and(|p| p.progress().ready() && now < p.deadline);
                    let r = w.chain.commit(BTreeMap::new(), now).map(|e| e.number);
                    prop_assert_eq!(r.is_ok(), ready);
                    if ready {
                        rekeys += 1;
                        prop_assert_eq!(w.chain.current.number, before + 1);
                    }
                }
                Step::Cancel => {
                    if let Some(p) = w.chain.pending.as_mut() {
                        let open = p.state == PendingState::Confirming;
                        prop_assert_eq!(p.cancel("cancelled", now).is_ok(), open);
                    }
                }
                Step::Tick(d) => now += d,
                Step::Sweep => {
                    if let Some(p) = w.chain.pending.as_mut() {
                        p.sweep(now);
                    }
                }
            }
            // One committed epoch: numbered by the rekeys committed so far.
            prop_assert_eq!(w.chain.current.number, 1 + rekeys);
            prop_assert!(w.chain.current.number >= before && w.chain.current.number <= before + 1);
            if let Some(p) = &w.chain.pending {
                match p.state {
                    PendingState::Committed => prop_assert_eq!(p.number, w.chain.current.number),
                    PendingState::Confirming => prop_assert_eq!(p.number, w.chain.current.number + 1),
                    PendingState::Cancelled | PendingState::Expired => {
                        prop_assert!(p.shares.values().all(|s| s.file.is_none()));
                    }
                }
                if let Some(was) = closed.get(&p.change_id) {
                    prop_assert_eq!(*was, p.state, "a terminal state stays terminal");
                }
                if p.state.is_terminal() {
                    closed.insert(p.change_id.clone(), p.state);
                }
            }
            w.check_current_opens();
        }
    }
}
