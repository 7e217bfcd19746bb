//! How a collecting request ends without a credential: cancelled by its
//! requester or a custodian, expired at its deadline, or abandoned when the
//! daemon stops. E_req and the shares are wiped as the state drops.

use super::{accepted_count, Collecting, Refused};
use crate::engine::event::{Event, Record};
use crate::engine::request::{record, Request, State};
use crate::error::{Error, Result};

impl Collecting {
    /// Cancels the request (`by` is the requester or a custodian, checked by the
    /// caller); `reason` comes from [`policy::reason`].
    pub fn cancel(
        self,
        by: &str,
        reason: &str,
        now: u64,
        commit: impl FnOnce(&Request, Vec<Record>) -> Result<()>,
    ) -> std::result::Result<Request, Refused<Collecting>> {
        let mut r = self.request.as_ref().clone();
        r.state = State::Cancelled;
        r.closed_at = now;
        r.close_reason = format!("cancelled by {by}: {reason}");
        let rec = record(
            now,
            by,
            &r.id,
            Event::RequestCancelled {
                by: by.to_string(),
                reason: reason.to_string(),
            },
        );
        self.close(r, vec![rec], commit)
    }

    /// Expires the request once its window has ended.
    pub fn expire(
        self,
        now: u64,
        commit: impl FnOnce(&Request, Vec<Record>) -> Result<()>,
    ) -> std::result::Result<Request, Refused<Collecting>> {
        if !self.is_due(now) {
            let error = Error::Internal(format!(
                "request `{}` is not due to expire until {}",
                self.request.id, self.request.deadline
            ));
            return Err(Refused { state: self, error });
        }
        let mut r = self.request.as_ref().clone();
        r.state = State::Expired;
        r.closed_at = now;
        r.close_reason = "collection window ended without a quorum".into();
        let rec = record(
            now,
            "daemon",
            &r.id,
            Event::RequestExpired {
                accepted: accepted_count(&r),
            },
        );
        self.close(r, vec![rec], commit)
    }

    /// Ends the request because the daemon is stopping; the secrets are wiped
    /// whether or not the returned record is persisted.
    pub fn abandon(self, now: u64, why: &str) -> (Request, Vec<Record>) {
        self.request
            .abandon(now, why)
            .unwrap_or_else(|| (self.request.as_ref().clone(), Vec::new()))
    }

    fn close(
        self,
        closed: Request,
        records: Vec<Record>,
        commit: impl FnOnce(&Request, Vec<Record>) -> Result<()>,
    ) -> std::result::Result<Request, Refused<Collecting>> {
        match commit(&closed, records) {
            // `self` (E_req, shares) drops here: invariant 3.
            Ok(()) => Ok(closed),
            Err(error) => Err(Refused { state: self, error }),
        }
    }
}
