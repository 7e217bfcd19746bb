//! The unlock's crypto: rebuild R from the quorum, open the seal, derive A,
//! mint what the scope says, and encrypt the bundle to the requester (or, for
//! a live drill, sign the drill statement with A and mint nothing). Every
//! secret here (R, S, A, the bundle in clear) is wiped when it drops at the
//! end of this function, whatever happens.

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::Daemon;
use crate::crypto::authority::AuthorityKey;
use crate::crypto::credential::{self, Grant, SshParams};
use crate::crypto::{seal, shamir};
use crate::engine::collecting::Quorum;
use crate::engine::policy::CredentialKind;
use crate::engine::request::{Request, StoredCredential};
use crate::error::{Error, Result};
use breakglass_formats::envelope::encrypt_to_ssh;

impl Daemon {
    /// Mints the credential of `r` from its quorum of `shares`.
    pub(super) fn mint(
        &self,
        rng: &mut dyn CryptoRngCore,
        r: &Request,
        quorum: Quorum<'_>,
        now: u64,
    ) -> Result<(StoredCredential, Vec<String>)> {
        let a = self.rebuild(quorum)?;
        let policy = self.policy();
        let scope = policy.scope(&r.scope)?;
        let approvers: Vec<String> = r.approvals.iter().map(|x| x.custodian.clone()).collect();
        let bundle = credential::mint(
            &a,
            rng,
            &Grant {
                daemon_id: &self.meta.daemon_id,
                request_id: &r.id,
                requester: &r.requester,
                scope: &r.scope,
                principals: &scope.principals,
                reason: &r.reason,
                approvers: &approvers,
                now,
                ttl_seconds: r.ttl_seconds,
                clock_skew: policy.clock_skew_seconds,
                token: scope.mints(CredentialKind::Token),
                ssh: if scope.mints(CredentialKind::Ssh) {
                    Some(SshParams {
                        public_key: &r.ssh_public_key,
                        extensions: &scope.ssh_extensions,
                    })
                } else {
                    None
                },
            },
        )?;
        drop(a);
        let requester = policy.commander(&r.requester)?;
        let plain = Zeroizing::new(
            serde_json::to_vec(&bundle).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let sealed = encrypt_to_ssh(&requester.member.ssh_key, &plain)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok((
            StoredCredential {
                expires_at: bundle.expires_at,
                sealed,
                ssh_serial: bundle.ssh_serial,
                ssh_key_id: bundle.ssh_key_id.clone(),
                // As `credential::mint` backdates both the token and the certificate.
                valid_from: Some(now.saturating_sub(policy.clock_skew_seconds)),
            },
            bundle.kinds(),
        ))
    }

    /// R from the quorum, S from the seal, A from S, checked against the
    /// published A; R and S are wiped before this returns, A when it drops.
    fn rebuild(&self, quorum: Quorum<'_>) -> Result<AuthorityKey> {
        let epoch = self.epoch();
        let root = shamir::combine(quorum)?;
        let seed = seal::unseal(
            &root,
            &epoch.seal,
            &seal::Binding {
                ceremony_id: &self.meta.ceremony_id,
                epoch: epoch.number,
                policy_digest: &epoch.policy_digest,
            },
        )?;
        drop(root);
        let a = AuthorityKey::derive(&seed);
        drop(seed);
        if a.public().to_bytes() != self.meta.authority_public {
            return Err(Error::Reconstruction(
                "the rebuilt authority key is not the published one".into(),
            ));
        }
        Ok(a)
    }

    /// A live drill's proof: the key rebuilt from the quorum signs the drill
    /// statement; nothing is minted. Returns the statement (JSON) and the epoch.
    pub(super) fn sign_drill(
        &self,
        r: &Request,
        quorum: Quorum<'_>,
        now: u64,
    ) -> Result<(String, u64)> {
        let a = self.rebuild(quorum)?;
        let epoch = self.epoch().number;
        let approvers: Vec<String> = r.approvals.iter().map(|x| x.custodian.clone()).collect();
        let mut st = breakglass_formats::drill::DrillStatement {
            format: breakglass_formats::drill::DRILL_STATEMENT_FORMAT.into(),
            daemon_id: self.meta.daemon_id.clone(),
            epoch,
            request_id: r.id.clone(),
            digest: hex::encode(r.digest),
            approvers,
            opened_at: r.opened_at,
            quorum_at: now,
            seconds_to_quorum: now.saturating_sub(r.opened_at),
            authority_public_key: hex::encode(self.meta.authority_public),
            signature: String::new(),
        };
        let payload = st
            .payload()
            .map_err(|e| Error::Internal(format!("drill statement: {e}")))?;
        st.signature = hex::encode(ed25519_dalek::Signer::sign(a.signing(), &payload).to_bytes());
        drop(a);
        let json = serde_json::to_string(&st).map_err(|e| Error::Internal(e.to_string()))?;
        Ok((json, epoch))
    }
}
