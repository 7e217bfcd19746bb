//! The end of a live drill: the quorum's shares rebuild R and A exactly as
//! for an unlock, but what A signs is a drill statement, and nothing is
//! minted. The drill's records replace `quorum_reached` with `drill_passed`,
//! so a drill counts toward nothing an unlock counts toward.

use super::{back, Collecting, Quorum, QuorumReached, Refused};
use crate::engine::event::{Event, Record};
use crate::engine::request::{record, Kind, Request, State};
use crate::error::{Error, Result};

impl QuorumReached {
    /// For a drill: `sign` rebuilds the key from the quorum and returns the
    /// statement A signed (JSON) and the epoch; the passed drill is persisted
    /// in one commit with the share record. On any failure the last share is
    /// dropped (wiped) and the drill goes back to collecting.
    pub fn rehearse(
        self,
        now: u64,
        sign: impl FnOnce(&Request, Quorum<'_>) -> Result<(String, u64)>,
        commit: impl FnOnce(&Request, Vec<Record>) -> Result<()>,
    ) -> std::result::Result<Request, Refused<Collecting>> {
        let QuorumReached {
            before,
            request,
            records,
            ephemeral,
            shares,
        } = self;
        let outcome = if request.kind == Kind::Drill {
            sign(&request, Quorum { shares: &shares }).and_then(|(statement, epoch)| {
                let mut r = *request;
                let mut recs: Vec<Record> = records
                    .into_iter()
                    .filter(|x| !matches!(x.event, Event::QuorumReached { .. }))
                    .collect();
                recs.push(record(
                    now,
                    "daemon",
                    &r.id,
                    Event::DrillPassed {
                        approvers: r.approvals.iter().map(|a| a.custodian.clone()).collect(),
                        seconds_to_quorum: now.saturating_sub(r.opened_at),
                        epoch,
                    },
                ));
                r.state = State::DrillPassed;
                r.closed_at = now;
                r.close_reason =
                    "drill passed: the quorum rebuilt the key; nothing was minted".into();
                r.drill_statement = Some(statement);
                commit(&r, recs)?;
                Ok(r)
            })
        } else {
            Err(Error::Internal(format!(
                "request `{}` is not a drill and cannot be rehearsed",
                request.id
            )))
        };
        // The shares and E_req drop on success: invariant 3.
        outcome.map_err(|error| back(before, ephemeral, shares, error))
    }
}
