//! Live drills: a commander opens a request that grants nothing; the real
//! custodians approve it; at quorum the daemon rebuilds the key and A signs a
//! drill statement, which anyone verifies offline against A.

use breakglass_formats::drill::DrillStatement;
use breakglass_proto::{pb, signing};

use super::{unix_now, Client, Role};
use crate::error::{ClientError, Result};
use crate::identity::Identity;

impl Client {
    /// Opens a live drill as commander `me` (or as a custodian, where the
    /// policy lets custodians open drills).
    pub async fn open_drill(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        reason: &str,
    ) -> Result<pb::RequestView> {
        let id = match self.whoami(me, Role::Commander, as_id) {
            Ok(id) => id,
            Err(e) => self.whoami(me, Role::Custodian, as_id).map_err(|_| e)?,
        };
        let nonce = signing::new_nonce(&mut rand_core::OsRng);
        let at = unix_now();
        let payload = signing::open_drill(&self.info.daemon_id, &id, reason, &nonce, at);
        let msg = pb::OpenRequestRequest {
            scope: String::new(),
            reason: reason.to_string(),
            ttl_seconds: 0,
            nonce: nonce.to_vec(),
            signature: Some(self.signature(me, &id, &payload, at)?),
            ssh_public_key: String::new(),
            kind: pb::RequestKind::Drill as i32,
        };
        let v = self.rpc.open_request(msg).await?.into_inner();
        self.check_view(&v)?;
        if v.kind != pb::RequestKind::Drill as i32 {
            return Err(ClientError::Untrusted(format!(
                "request {} was opened as access, not as a drill",
                v.id
            )));
        }
        Ok(v)
    }

    /// The drill statement of a passed drill `v` (checked by [`Client::check_view`]
    /// first), verified against this daemon's A and id.
    pub fn drill_statement(&self, v: &pb::RequestView) -> Result<DrillStatement> {
        self.check_view(v)?;
        if v.state != pb::RequestState::DrillPassed as i32 {
            return Err(ClientError::Other(format!(
                "request {} has not passed as a drill",
                v.id
            )));
        }
        let st = DrillStatement::parse(&v.drill_statement)
            .map_err(|e| ClientError::Untrusted(format!("drill {}: {e}", v.id)))?;
        let a: [u8; 32] = self
            .info
            .authority_public_key
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Untrusted("the authority key is not 32 bytes".into()))?;
        st.verify(&a, Some(&self.info.daemon_id))
            .map_err(|e| ClientError::Untrusted(format!("drill {}: {e}", v.id)))?;
        if st.request_id != v.id || st.digest != hex::encode(&v.digest) {
            return Err(ClientError::Untrusted(format!(
                "the drill statement is for request {}, not {}",
                st.request_id, v.id
            )));
        }
        Ok(st)
    }
}
