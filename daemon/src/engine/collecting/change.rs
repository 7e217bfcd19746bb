//! The end of a change request (DESIGN.md "Epochs"): the quorum's shares
//! rebuild R of the current epoch exactly as for an unlock, but what the key
//! does is apply the proposed policy: a re-seal of S under the same R with the
//! new digest (same custodians and threshold), or the next epoch dealt to the
//! new custodians. Nothing is minted. The request ends `ChangeApplied` or
//! `ChangeDealt`, persisted in one commit with the share and change records; on any failure the last share is dropped (wiped) and the change
//! goes back to collecting.

use super::{back, Collecting, Quorum, QuorumReached, Refused};
use crate::engine::event::{Event, Record};
use crate::engine::request::{record, Kind, Request, State};
use crate::error::{Error, Result};

/// What applying a change did, as the caller's key work reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The new policy applies now with the same shares (`change_applied`).
    Resealed {
        /// Requests collecting under the old policy, cancelled with the change.
        cancelled: Vec<String>,
    },
    /// The next epoch was dealt and waits for confirmations (`epoch_dealt`).
    Dealt {
        /// The pending epoch.
        epoch: u64,
        /// Confirmations it needs.
        need: u32,
        /// When it expires unless committed.
        deadline: u64,
    },
}

impl QuorumReached {
    /// For a change request: `apply` rebuilds the current R from the quorum
    /// and re-seals or deals; the outcome must be the one the change's summary
    /// calls for (a re-seal only when nobody needs a new share).
    pub fn change(
        self,
        now: u64,
        apply: impl FnOnce(&Request, Quorum<'_>) -> Result<Applied>,
        commit: impl FnOnce(&Request, Vec<Record>) -> Result<()>,
    ) -> std::result::Result<Request, Refused<Collecting>> {
        let QuorumReached {
            before,
            request,
            records,
            ephemeral,
            shares,
        } = self;
        let outcome = match (&request.kind, &request.change) {
            (Kind::Change, Some(_)) => Ok(()),
            _ => Err(Error::Internal(format!(
                "request `{}` is not a policy change",
                request.id
            ))),
        }
        .and_then(|()| apply(&request, Quorum { shares: &shares }))
        .and_then(|applied| {
            let mut r = *request;
            let c = r
                .change
                .as_ref()
                .ok_or_else(|| Error::Internal("change record vanished".into()))?;
            let (state, reason, event) = match (applied, c.rekey()) {
                (Applied::Resealed { cancelled }, false) => (
                    State::ChangeApplied,
                    "quorum reached; the new policy applies now, with the same shares".to_string(),
                    Event::ChangeApplied {
                        epoch: c.epoch,
                        old_policy_digest: hex::encode(c.current_policy_digest),
                        new_policy_digest: hex::encode(c.new_policy_digest),
                        cancelled,
                    },
                ),
                (
                    Applied::Dealt {
                        epoch,
                        need,
                        deadline,
                    },
                    true,
                ) => (
                    State::ChangeDealt,
                    format!(
                        "quorum reached; epoch {epoch} was dealt: it commits when {need} new custodians have confirmed their shares"
                    ),
                    Event::EpochDealt {
                        epoch,
                        policy_digest: hex::encode(c.new_policy_digest),
                        custodians: c.new_policy.custodian_ids(),
                        threshold: c.new_policy.threshold,
                        need,
                        deadline,
                    },
                ),
                (applied, rekey) => {
                    return Err(Error::Internal(format!(
                        "change `{}` {} new shares but was applied as {applied:?}",
                        r.id,
                        if rekey { "needs" } else { "needs no" }
                    )))
                }
            };
            // As for a drill, `quorum_reached` is an unlock's: a change's
            // quorum is on the record as the change it made.
            let mut recs: Vec<Record> = records
                .into_iter()
                .filter(|x| !matches!(x.event, Event::QuorumReached { .. }))
                .collect();
            recs.push(record(now, "daemon", &r.id, event));
            r.state = state;
            r.closed_at = now;
            r.close_reason = reason;
            commit(&r, recs)?;
            Ok(r)
        });
        // The shares and E_req drop on success: invariant 3.
        outcome.map_err(|error| back(before, ephemeral, shares, error))
    }
}
