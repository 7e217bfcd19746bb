//! Attestation (readiness): a custodian proves to the daemon that her key, her
//! passphrase and her share file still work, without unlocking anything. The
//! daemon issues a one-shot key signed by D; the share is sealed to it and the
//! sealed bytes are signed; the daemon checks the share against her
//! commitment, wipes it, and records the attestation.

use ed25519_dalek::Signature;

use breakglass_formats::share_file::ShareFile;
use breakglass_proto::{pb, signing, transport};

use super::{unix_now, Client, Role};
use crate::error::{ClientError, Result};
use crate::identity::Identity;

/// What the daemon recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    /// The custodian.
    pub custodian_id: String,
    /// Epoch of her share.
    pub epoch: u64,
    /// When the daemon recorded it.
    pub attested_at: u64,
    /// The attestation id (in the audit event `share_attested`).
    pub attestation_id: String,
    /// The one-shot X25519 public key the share was sealed to (its secret half
    /// was the daemon's, wiped after the check).
    pub attestation_key: [u8; 32],
}

impl Client {
    /// Asks for a one-shot attestation key as custodian `id` and checks it:
    /// issued to `id`, for this daemon's epoch, signed by this daemon's D.
    pub async fn start_attestation(
        &mut self,
        me: &Identity,
        id: &str,
    ) -> Result<pb::AttestationChallenge> {
        let at = unix_now();
        let payload = signing::start_attestation(&self.info.daemon_id, id, at);
        let c = self
            .rpc
            .start_attestation(pb::StartAttestationRequest {
                signature: Some(self.signature(me, id, &payload, at)?),
            })
            .await?
            .into_inner();
        let key = challenge_key(&c)?;
        if c.custodian_id != id || c.epoch != self.info.epoch {
            return Err(ClientError::Untrusted(format!(
                "the daemon issued an attestation key for custodian {} epoch {}, but {id} asked for epoch {}",
                c.custodian_id, c.epoch, self.info.epoch
            )));
        }
        let statement = signing::attestation_challenge(&self.challenge_fields(&c, &key));
        let sig: [u8; 64] = c.daemon_signature.as_slice().try_into().map_err(|_| {
            ClientError::Untrusted("the attestation key's D signature is not 64 bytes".into())
        })?;
        self.daemon_key
            .verify_strict(&statement, &Signature::from_bytes(&sig))
            .map_err(|_| {
                ClientError::Untrusted(
                    "the attestation key is not signed by this daemon's key D: do not send a share to it"
                        .into(),
                )
            })?;
        Ok(c)
    }

    /// Proves `share` to the daemon as custodian `me` (`as_id`, or the
    /// file's custodian): one start, one sealed and signed attestation.
    pub async fn attest(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        share: &ShareFile,
    ) -> Result<Attested> {
        let id = self.whoami(
            me,
            Role::Custodian,
            as_id.or(Some(share.custodian_id.as_str())),
        )?;
        let c = self.start_attestation(me, &id).await?;
        let key = challenge_key(&c)?;
        let digest = signing::attestation_digest(&self.challenge_fields(&c, &key));
        let bytes = share.share_bytes().map_err(|e| ClientError::ShareFile {
            path: "(share)".into(),
            why: e.to_string(),
        })?;
        let sealed = transport::seal_share(
            &key,
            &digest,
            &c.attestation_id,
            &id,
            &bytes,
            rand_core::OsRng,
        )
        .map_err(|e| ClientError::Other(e.to_string()))?;
        drop(bytes);
        let at = unix_now();
        let payload = signing::attest_share(
            &self.info.daemon_id,
            &c.attestation_id,
            &digest,
            &id,
            &sealed,
            at,
        );
        let out = self
            .rpc
            .attest_share(pb::AttestShareRequest {
                attestation_id: c.attestation_id.clone(),
                sealed_share: sealed,
                signature: Some(self.signature(me, &id, &payload, at)?),
            })
            .await?
            .into_inner();
        if out.custodian_id != id {
            return Err(ClientError::Untrusted(format!(
                "the daemon recorded an attestation for {}, not for {id}",
                out.custodian_id
            )));
        }
        Ok(Attested {
            custodian_id: out.custodian_id,
            epoch: out.epoch,
            attested_at: out.attested_at,
            attestation_id: c.attestation_id,
            attestation_key: key,
        })
    }

    /// The readiness report, for this daemon.
    pub async fn readiness(&mut self) -> Result<pb::Readiness> {
        let r = self
            .rpc
            .get_readiness(pb::GetReadinessRequest {})
            .await?
            .into_inner();
        if r.daemon_id != self.info.daemon_id {
            return Err(ClientError::Untrusted(format!(
                "the readiness report is for daemon {}, not {}",
                r.daemon_id, self.info.daemon_id
            )));
        }
        Ok(r)
    }

    fn challenge_fields<'a>(
        &'a self,
        c: &'a pb::AttestationChallenge,
        key: &'a [u8; 32],
    ) -> signing::Challenge<'a> {
        signing::Challenge {
            daemon_id: &self.info.daemon_id,
            ceremony_id: &self.info.ceremony_id,
            epoch: c.epoch,
            attestation_id: &c.attestation_id,
            custodian_id: &c.custodian_id,
            public_key: key,
            expires_at: c.expires_at,
        }
    }
}

fn challenge_key(c: &pb::AttestationChallenge) -> Result<[u8; 32]> {
    c.public_key.as_slice().try_into().map_err(|_| {
        ClientError::Untrusted(format!(
            "the attestation key is {} bytes, not 32",
            c.public_key.len()
        ))
    })
}
