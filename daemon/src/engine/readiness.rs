//! Readiness: how ready the real quorum is to act, from what each custodian
//! last proved. A custodian is *proven* when she attested in the current
//! epoch within the policy's `attest_every`; the quorum is *ready* when at
//! least a threshold of custodians are proven, *at risk* otherwise. Due and
//! overdue proofs are found here too, each due date once, so the daemon
//! notifies about it once and not on every start.

use serde::{Deserialize, Serialize};

use super::policy::Policy;

/// What one custodian has last proven, and when (stored per custodian).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proofs {
    /// Time of her last successful attestation.
    #[serde(default)]
    pub attested_at: Option<u64>,
    /// Epoch of that attestation.
    #[serde(default)]
    pub attested_epoch: Option<u64>,
    /// Time of her confirmation of a rekey's new share (proved against its
    /// commitment and wiped, as an attestation is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<u64>,
    /// The epoch of that share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_epoch: Option<u64>,
    /// Time of her last accepted share on a request.
    #[serde(default)]
    pub approved_at: Option<u64>,
    /// The due date of her attestation the daemon last notified about.
    #[serde(default)]
    pub due_notified: Option<u64>,
    /// Time of the last live drill she approved that passed.
    #[serde(default)]
    pub drilled_at: Option<u64>,
}

impl Proofs {
    /// Her last proof of possession of her share of `epoch`: an attestation,
    /// or the confirmation of that share when a rekey dealt it.
    pub fn last_proof(&self, epoch: u64) -> Option<u64> {
        let attested = self
            .attested_at
            .filter(|_| self.attested_epoch == Some(epoch));
        let confirmed = self
            .confirmed_at
            .filter(|_| self.confirmed_epoch == Some(epoch));
        attested.max(confirmed)
    }
}

/// The last passed live drill (stored beside the custodians' proofs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastDrill {
    /// When it passed.
    #[serde(default)]
    pub at: Option<u64>,
    /// Its request id.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Seconds from opening to quorum.
    #[serde(default)]
    pub seconds_to_quorum: Option<u64>,
    /// Epoch of the shares it combined.
    #[serde(default)]
    pub epoch: Option<u64>,
    /// The due date of the next drill the daemon last notified about.
    #[serde(default)]
    pub due_notified: Option<u64>,
}

/// Everything the readiness table holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Each custodian's proofs, by id.
    pub custodians: std::collections::BTreeMap<String, Proofs>,
    /// The last passed drill.
    pub drill: LastDrill,
}

/// One custodian in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustodianReadiness {
    /// Custodian id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// What she last proved.
    pub proofs: Proofs,
    /// Whether she attested in this epoch within `attest_every`.
    pub proven: bool,
    /// When her next attestation is due.
    pub due_at: u64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Current epoch.
    pub epoch: u64,
    /// When it was computed.
    pub now: u64,
    /// The policy's `attest_every`, seconds.
    pub attest_every: u64,
    /// The policy's `drill_every`, seconds.
    pub drill_every: u64,
    /// Shares needed.
    pub threshold: u8,
    /// Every custodian, in policy order.
    pub custodians: Vec<CustodianReadiness>,
    /// How many are proven.
    pub proven: usize,
    /// At least a threshold proven.
    pub ready: bool,
    /// Ids of the custodians who are not proven.
    pub stale: Vec<String>,
    /// The last passed live drill in this epoch (none: never).
    pub last_drill: Option<LastDrill>,
    /// When the next live drill is due (`drill_every` after the last one, or
    /// after the ceremony).
    pub drill_due_at: u64,
    /// The drill due date the daemon last notified about.
    pub drill_due_notified: Option<u64>,
}

/// The readiness report at `now`. `since` is when the current epoch began
/// (the ceremony): a custodian who never attested is due `attest_every` after it.
pub fn report(policy: &Policy, history: &History, epoch: u64, since: u64, now: u64) -> Report {
    let proofs = &history.custodians;
    let every = policy.attest_every();
    let last_drill =
        Some(history.drill.clone()).filter(|d| d.at.is_some() && d.epoch == Some(epoch));
    let drill_due_at = last_drill
        .as_ref()
        .and_then(|d| d.at)
        .unwrap_or(since)
        .max(since)
        .saturating_add(policy.drill_every());
    let custodians: Vec<CustodianReadiness> = policy
        .custodians
        .iter()
        .map(|m| {
            let p = proofs.get(&m.id).cloned().unwrap_or_default();
            let current = p.last_proof(epoch);
            // Proven strictly before the due date; at the due date she is due.
            let proven = current.is_some_and(|at| now.saturating_sub(at) < every);
            let due_at = current.unwrap_or(since).max(since).saturating_add(every);
            CustodianReadiness {
                id: m.id.clone(),
                name: m.name.clone(),
                proofs: p,
                proven,
                due_at,
            }
        })
        .collect();
    let proven = custodians.iter().filter(|c| c.proven).count();
    Report {
        epoch,
        now,
        attest_every: every,
        drill_every: policy.drill_every(),
        threshold: policy.threshold,
        proven,
        ready: proven >= usize::from(policy.threshold),
        stale: custodians
            .iter()
            .filter(|c| !c.proven)
            .map(|c| c.id.clone())
            .collect(),
        custodians,
        last_drill,
        drill_due_at,
        drill_due_notified: history.drill.due_notified,
    }
}

impl Report {
    /// Custodians whose attestation is due at `now` and who were not yet
    /// notified about that due date: (id, due date, last attestation).
    pub fn newly_due(&self) -> Vec<(String, u64, Option<u64>)> {
        self.custodians
            .iter()
            .filter(|c| c.due_at <= self.now && c.proofs.due_notified != Some(c.due_at))
            .map(|c| {
                let current = c.proofs.last_proof(self.epoch);
                (c.id.clone(), c.due_at, current)
            })
            .collect()
    }

    /// The live drill's due date, if it passed and was not yet notified.
    pub fn drill_newly_due(&self) -> Option<u64> {
        (self.drill_due_at <= self.now && self.drill_due_notified != Some(self.drill_due_at))
            .then_some(self.drill_due_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::policy::tests::sample_toml;

    const DAY: u64 = 86_400;
    const T0: u64 = 1_700_000_000;

    fn attested(at: u64, epoch: u64) -> Proofs {
        Proofs {
            attested_at: Some(at),
            attested_epoch: Some(epoch),
            ..Proofs::default()
        }
    }

    /// The report flips from at risk to ready as custodians attest, and an
    /// attestation older than `attest_every` (or from another epoch) no
    /// longer counts.
    #[test]
    fn ready_when_a_threshold_is_proven() {
        let p = Policy::from_toml(&sample_toml(3, 2)).unwrap();
        let mut h = History::default();
        let r = report(&p, &h, 1, T0, T0 + 10);
        assert_eq!((r.proven, r.ready), (0, false));
        assert_eq!(r.stale, vec!["c1", "c2", "c3"]);
        assert!(
            r.newly_due().is_empty(),
            "nothing is due right after the ceremony"
        );
        h.custodians.insert("c1".to_string(), attested(T0 + 20, 1));
        let r = report(&p, &h, 1, T0, T0 + 30);
        assert_eq!((r.proven, r.ready), (1, false));
        h.custodians.insert("c3".to_string(), attested(T0 + 40, 1));
        let r = report(&p, &h, 1, T0, T0 + 50);
        assert_eq!((r.proven, r.ready), (2, true));
        assert_eq!(r.stale, vec!["c2"]);
        // 90 days later c1's proof is stale: at risk again.
        let later = T0 + 20 + 90 * DAY + 1;
        let r = report(&p, &h, 1, T0, later);
        assert_eq!((r.proven, r.ready), (1, false));
        assert_eq!(r.stale, vec!["c1", "c2"]);
        // Another epoch's attestation proves nothing about this one.
        h.custodians.insert("c2".to_string(), attested(T0 + 60, 2));
        let r = report(&p, &h, 1, T0, T0 + 70);
        assert!(!r.custodians[1].proven);
    }

    /// The live drill falls due `drill_every` after the ceremony or the last
    /// passed drill of this epoch, once per due date.
    #[test]
    fn drill_due_once() {
        let p = Policy::from_toml(&sample_toml(3, 2)).unwrap();
        let mut h = History::default();
        assert_eq!(
            report(&p, &h, 1, T0, T0 + 179 * DAY).drill_newly_due(),
            None
        );
        let r = report(&p, &h, 1, T0, T0 + 181 * DAY);
        assert_eq!(r.drill_newly_due(), Some(T0 + 180 * DAY));
        assert!(r.last_drill.is_none());
        h.drill.due_notified = Some(T0 + 180 * DAY);
        assert_eq!(
            report(&p, &h, 1, T0, T0 + 181 * DAY).drill_newly_due(),
            None
        );
        h.drill.at = Some(T0 + 182 * DAY);
        h.drill.epoch = Some(1);
        h.drill.seconds_to_quorum = Some(300);
        let r = report(&p, &h, 1, T0, T0 + 183 * DAY);
        assert_eq!(r.drill_due_at, T0 + 362 * DAY);
        assert_eq!(r.drill_newly_due(), None);
        assert_eq!(r.last_drill.unwrap().seconds_to_quorum, Some(300));
        // Another epoch's drill does not count for this one.
        let r = report(&p, &h, 2, T0, T0 + 183 * DAY);
        assert!(r.last_drill.is_none());
    }

    /// Each due date is reported once: after the daemon notes it, it is not
    /// due again until the next period.
    #[test]
    fn due_once_per_due_date() {
        let p = Policy::from_toml(&sample_toml(3, 2)).unwrap();
        let mut h = History::default();
        h.custodians
            .insert("c1".to_string(), attested(T0 + 5 * DAY, 1));
        let now = T0 + 91 * DAY;
        let r = report(&p, &h, 1, T0, now);
        let due = r.newly_due();
        assert_eq!(
            due.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
            vec!["c2", "c3"]
        );
        assert_eq!(due[0].1, T0 + 90 * DAY);
        for (id, at, _) in &due {
            h.custodians.entry(id.clone()).or_default().due_notified = Some(*at);
        }
        assert!(report(&p, &h, 1, T0, now).newly_due().is_empty());
        // c1's falls due 90 days after her attestation.
        let r = report(&p, &h, 1, T0, T0 + 96 * DAY);
        assert_eq!(r.newly_due()[0].0, "c1");
        assert_eq!(r.newly_due()[0].1, T0 + 95 * DAY);
    }

    /// A rekey's confirmation proves the new share like an attestation, but
    /// only for the epoch it is of: while that epoch is pending, the
    /// custodian's attestation of the current epoch still counts.
    #[test]
    fn a_confirmation_proves_the_new_epochs_share_only() {
        let p = Proofs {
            confirmed_at: Some(T0 + 10 * DAY),
            confirmed_epoch: Some(2),
            ..attested(T0, 1)
        };
        assert_eq!(p.last_proof(1), Some(T0));
        assert_eq!(p.last_proof(2), Some(T0 + 10 * DAY));
        assert_eq!(p.last_proof(3), None);
        let later = Proofs {
            attested_at: Some(T0 + 20 * DAY),
            attested_epoch: Some(2),
            ..p
        };
        assert_eq!(later.last_proof(2), Some(T0 + 20 * DAY), "the newer proof");
    }
}
