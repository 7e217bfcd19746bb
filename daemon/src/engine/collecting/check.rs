//! The checks on one custodian's share, in the engine's order, cheapest
//! first: its sealed shape, the request's window, one share per custodian,
//! separation of duties (all without decrypting), then decryption with E_req
//! and the commitment. Each is made here and nowhere else.

use zeroize::Zeroizing;

use breakglass_proto::transport;

use super::{Admitted, Collecting};
use crate::engine::auth::AuthenticatedCustodian;
use crate::engine::policy::Policy;
use crate::engine::share::{verify_share, Commitment, Lineage, VerifiedShare};
use crate::error::{Error, Result};

impl Collecting {
    /// An authenticated custodian's sealed share, checked in full: what comes
    /// back is the only input [`Collecting::accept`] takes.
    pub fn check_share(
        &self,
        policy: &Policy,
        who: &AuthenticatedCustodian,
        commitment: &Commitment,
        lineage: Lineage<'_>,
        sealed: &[u8],
        now: u64,
    ) -> Result<(Admitted, VerifiedShare)> {
        transport::check_sealed(sealed).map_err(|e| Error::ShareMalformed {
            custodian: who.id().to_string(),
            why: e.to_string(),
        })?;
        let admitted = self.admit(policy, who.id(), now)?;
        let plain = self.open_share(who.id(), sealed)?;
        Ok((admitted, verify_share(who, commitment, lineage, &plain)?))
    }

    /// Every check on a share that needs no signature and no decryption, cheapest
    /// first: the window is open, the custodian has not approved yet, and
    /// (separation of duties) the custodian is not the requester.
    pub fn admit(&self, policy: &Policy, custodian: &str, now: u64) -> Result<Admitted> {
        let r = &self.request;
        if self.is_due(now) {
            return Err(Error::WindowClosed {
                id: r.id.clone(),
                deadline: r.deadline,
                now,
            });
        }
        if r.approvals.iter().any(|a| a.custodian == custodian) {
            return Err(Error::DuplicateShare {
                custodian: custodian.to_string(),
                id: r.id.clone(),
            });
        }
        policy.check_separation(&r.id, custodian, &r.requester)?;
        Ok(Admitted {
            request_id: r.id.clone(),
            custodian: custodian.to_string(),
            now,
        })
    }

    /// Decrypts a sealed share with E_req; the plaintext is wiped when dropped.
    pub fn open_share(&self, custodian: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let r = &self.request;
        transport::open_share(&self.ephemeral, &r.digest, &r.id, custodian, sealed).map_err(|e| {
            Error::ShareMalformed {
                custodian: custodian.to_string(),
                why: e.to_string(),
            }
        })
    }
}
