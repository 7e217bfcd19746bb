//! `StartAttestation` and `AttestShare`: a custodian proves her share to the
//! daemon without unlocking anything (readiness). Her share arrives sealed to
//! a one-shot key the daemon issued to her alone, is checked against her
//! commitment by the engine, and is wiped with the key before the answer; a
//! success is recorded per custodian (`share_attested`), every refusal after
//! her signature verified is on the record (`share_rejected`).

use breakglass_proto::signing;

use super::Daemon;
use crate::engine::attest::{Issue, Issued};
use crate::engine::auth;
use crate::engine::event::{Event, Record};
use crate::error::{Error, Result};

/// An issued challenge with D's signature over it.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The challenge.
    pub issued: Issued,
    /// D's signature over `signing::attestation_challenge`.
    pub signature: [u8; 64],
}

/// A custodian's attestation.
#[derive(Debug, Clone)]
pub struct AttestCall {
    /// Attestation id.
    pub attestation_id: String,
    /// The share sealed to the challenge's key.
    pub sealed_share: Vec<u8>,
    /// Signature.
    pub sig: super::Sig,
}

/// What was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The custodian.
    pub custodian: String,
    /// Her share's epoch.
    pub epoch: u64,
    /// When it was recorded.
    pub attested_at: u64,
}

impl Daemon {
    /// Issues a one-shot attestation key to the custodian who signed.
    pub fn start_attestation(&self, sig: &super::Sig) -> Result<Challenge> {
        let out = self.start_inner(sig);
        // x25519 leaves copies of the new secret in its stack frames.
        super::scrub_stack();
        out
    }

    /// Pending attestation keys now (the memory tests compare with it).
    pub fn pending_attestations(&self) -> Result<usize> {
        Ok(self.lock()?.attestations.pending())
    }

    fn start_inner(&self, sig: &super::Sig) -> Result<Challenge> {
        let epoch = self.epoch();
        let claimed = auth::claim_custodian(&epoch.policy, &sig.signer_id)?;
        let now = self.now();
        let payload =
            signing::start_attestation(&self.meta.daemon_id, &sig.signer_id, sig.signed_at);
        let who = self.verified(
            "start_attestation",
            None,
            claimed.authenticate(self.checks(&epoch.policy, now), &sig.by(), &payload),
            now,
        )?;
        let mut live = self.lock()?;
        self.same_epoch(&epoch)?;
        let live = &mut *live;
        let issued = live.attestations.start(
            live.rng.as_mut(),
            &Issue {
                daemon_id: &self.meta.daemon_id,
                ceremony_id: &self.meta.ceremony_id,
                epoch: epoch.number,
                custodian: &who,
                now,
            },
        );
        let signature = self.key.sign_challenge(&signing::Challenge {
            daemon_id: &self.meta.daemon_id,
            ceremony_id: &self.meta.ceremony_id,
            epoch: issued.epoch,
            attestation_id: &issued.id,
            custodian_id: &issued.custodian,
            public_key: &issued.public_key,
            expires_at: issued.expires_at,
        });
        Ok(Challenge { issued, signature })
    }

    /// Checks a custodian's share sealed to her attestation key and records it.
    pub fn attest(&self, call: &AttestCall) -> Result<Attestation> {
        let out = self.attest_inner(call);
        super::scrub_stack();
        out
    }

    fn attest_inner(&self, call: &AttestCall) -> Result<Attestation> {
        auth::claim_custodian(&self.policy(), &call.sig.signer_id)?;
        crate::engine::policy::plain_text("attestation_id", &call.attestation_id)?;
        let id = &call.attestation_id;
        if !id.starts_with("att-") || id.len() > 64 {
            return Err(Error::invalid(
                "attestation_id",
                "must be an attestation id like `att-0123456789abcdef`, from StartAttestation",
            ));
        }
        let now = self.now();
        let mut live = self.lock()?;
        let epoch = self.epoch();
        let claimed = auth::claim_custodian(&epoch.policy, &call.sig.signer_id)?;
        // Unknown ids and bad signatures go to the operational log only; once
        // the signature verifies, every refusal is on the record.
        let known = live.attestations.known(&call.attestation_id)?;
        let payload = signing::attest_share(
            &self.meta.daemon_id,
            &call.attestation_id,
            &known.digest,
            &call.sig.signer_id,
            &call.sealed_share,
            call.sig.signed_at,
        );
        let who = self.verified(
            "attest_share",
            None,
            claimed.authenticate(self.checks(&epoch.policy, now), &call.sig.by(), &payload),
            now,
        )?;
        let com = epoch.commitments.get(who.id()).ok_or_else(|| {
            Error::Internal(format!("no commitment for custodian `{}`", who.id()))
        })?;
        let checked = live.attestations.attest(
            &call.attestation_id,
            &who,
            com,
            &self.meta.ceremony_id,
            &call.sealed_share,
            now,
        );
        drop(live);
        let attested = match checked {
            Ok(a) => a,
            Err(e) => {
                let event = Event::ShareRejected {
                    custodian: who.id().to_string(),
                    reason: format!("attestation `{}`: {e}", call.attestation_id),
                };
                return Err(self.audit_refusal(who.id(), Some(who.signed()), None, event, e, now));
            }
        };
        self.commit(
            &[],
            vec![Record {
                time: now,
                actor: attested.custodian.clone(),
                request_id: None,
                event: Event::ShareAttested {
                    custodian: attested.custodian.clone(),
                    epoch: attested.epoch,
                    attestation_id: attested.id,
                },
                signed_with: Some(who.signed().clone()),
            }],
        )?;
        Ok(Attestation {
            custodian: attested.custodian,
            epoch: attested.epoch,
            attested_at: now,
        })
    }
}
