//! Offline verification of credentials against the authority public key A,
//! with no daemon involved: what a downstream system does. Covers the PASETO
//! token, the OpenSSH certificate, and (given a revocation list) revocation;
//! each failure has its own message.

use serde::{Deserialize, Serialize};

use breakglass_daemon::crypto::authority::AuthorityPublic;
use breakglass_daemon::crypto::credential::{self, CredentialBundle, VerifiedToken};
use breakglass_daemon::crypto::sshcert::{self, CertInfo};

use crate::error::{ClientError, Result};

/// Format tag of the JSON revocation list.
pub const REVOCATIONS_FORMAT: &str = "breakglass-revocations/v1";

/// Parses A from `k4.public.…` (PASERK), `ssh-ed25519 …`, or 64 hex digits.
pub fn parse_authority(s: &str) -> Result<AuthorityPublic> {
    let s = s.trim();
    let bad = |why: String| ClientError::Other(format!("authority key {s:?}: {why}"));
    if s.starts_with("k4.public.") {
        let k = pasetors::keys::AsymmetricPublicKey::<pasetors::version4::V4>::try_from(s)
            .map_err(|e| bad(format!("not a PASERK k4.public key: {e:?}")))?;
        return AuthorityPublic::from_bytes(k.as_bytes()).map_err(|e| bad(e.to_string()));
    }
    if s.starts_with("ssh-ed25519 ") {
        let (k, _) = breakglass_daemon::engine::policy::parse_ssh_ed25519("authority", s)
            .map_err(|e| bad(e.to_string()))?;
        return Ok(AuthorityPublic(k));
    }
    let mut b = [0u8; 32];
    hex::decode_to_slice(s, &mut b).map_err(|_| {
        bad("expected k4.public.…, ssh-ed25519 … or 64 hex digits (`breakglass authority` prints it)".into())
    })?;
    AuthorityPublic::from_bytes(&b).map_err(|e| bad(e.to_string()))
}

/// What a file to verify holds.
#[derive(Debug, Clone)]
pub enum Artifact {
    /// A credential bundle from `breakglass credential fetch`.
    Bundle(Box<CredentialBundle>),
    /// A bare PASETO token.
    Token(String),
    /// An OpenSSH certificate line (`…-cert.pub`).
    Certificate(String),
}

/// Recognises a bundle (JSON), an OpenSSH certificate, or a bare token.
pub fn parse_artifact(text: &str) -> Result<Artifact> {
    let t = text.trim();
    if t.starts_with('{') {
        let b: CredentialBundle = serde_json::from_str(t)
            .map_err(|e| ClientError::Credential(format!("not a credential bundle: {e}")))?;
        return Ok(Artifact::Bundle(Box::new(b)));
    }
    if t.split_whitespace()
        .next()
        .is_some_and(|a| a.contains("-cert-v01@openssh.com"))
    {
        return Ok(Artifact::Certificate(t.to_string()));
    }
    if t.starts_with("v4.public.") {
        return Ok(Artifact::Token(t.to_string()));
    }
    Err(ClientError::Credential(
        "not a credential bundle, an OpenSSH certificate or a v4.public token".into(),
    ))
}

/// Extracts the token from a bundle file's JSON or a bare token.
pub fn token_from(text: &str) -> Result<String> {
    match parse_artifact(text)? {
        Artifact::Bundle(b) => b
            .paseto
            .ok_or_else(|| ClientError::Credential("this bundle holds no token".into())),
        Artifact::Token(t) => Ok(t),
        Artifact::Certificate(_) => Err(ClientError::Credential(
            "this is an SSH certificate, not a token".into(),
        )),
    }
}

/// Verifies a token at `now`.
pub fn verify_token(authority: &AuthorityPublic, token: &str, now: u64) -> Result<VerifiedToken> {
    credential::verify(authority, token, now)
        .map_err(|e| ClientError::Credential(format!("token: {e}")))
}

/// Verifies an OpenSSH certificate at `now`.
pub fn verify_certificate(authority: &AuthorityPublic, line: &str, now: u64) -> Result<CertInfo> {
    sshcert::verify(authority, line, now)
        .map_err(|e| ClientError::Credential(format!("ssh certificate: {e}")))
}

/// One revoked credential, as `breakglass revocations --json` writes it: the daemon's
/// own revocation entry.
pub use breakglass_daemon::service::RevokedItem as RevokedJson;

/// The JSON revocation list for services that accept tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationListJson {
    /// [`REVOCATIONS_FORMAT`].
    pub format: String,
    /// Daemon id.
    pub daemon_id: String,
    /// When the daemon made the list.
    pub generated_at: u64,
    /// The authority the list belongs to (`ssh-ed25519 …`).
    pub authority_ssh: String,
    /// Revoked token ids (`jti`), for a quick lookup.
    pub revoked_token_ids: Vec<String>,
    /// Details.
    pub revoked: Vec<RevokedJson>,
}

impl RevocationListJson {
    fn find_token(&self, jti: &str) -> Option<&RevokedJson> {
        self.revoked.iter().find(|r| r.request_id == jti)
    }

    fn find_cert(&self, info: &CertInfo) -> Option<&RevokedJson> {
        self.revoked.iter().find(|r| {
            (r.ssh_serial != 0 && r.ssh_serial == info.serial)
                || (!r.ssh_key_id.is_empty() && r.ssh_key_id == info.key_id)
        })
    }
}

fn revoked_error(what: &str, r: &RevokedJson) -> ClientError {
    ClientError::Credential(format!(
        "{what}: revoked at {} by {} ({}); request {}",
        r.revoked_at, r.revoked_by, r.reason, r.request_id
    ))
}

/// Verifies everything in `artifact` at `now`; returns human-readable lines.
pub fn verify_artifact(
    authority: &AuthorityPublic,
    artifact: &Artifact,
    now: u64,
    revocations: Option<&RevocationListJson>,
) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let token = |t: &str, lines: &mut Vec<String>| -> Result<()> {
        let v = verify_token(authority, t, now)?;
        if let Some(r) = revocations.and_then(|l| l.find_token(&v.request_id)) {
            return Err(revoked_error("token", r));
        }
        lines.push(format!(
            "token valid: subject {} · scope {} · request {} · approvers {} · expires in {}s",
            v.subject,
            v.scope,
            v.request_id,
            v.approvers.join(", "),
            v.expires_at.saturating_sub(now)
        ));
        Ok(())
    };
    let cert = |c: &str, lines: &mut Vec<String>| -> Result<()> {
        let info = verify_certificate(authority, c, now)?;
        if let Some(r) = revocations.and_then(|l| l.find_cert(&info)) {
            return Err(revoked_error("ssh certificate", r));
        }
        lines.push(format!(
            "ssh certificate valid: key id {} · serial {} · principals {} · expires in {}s",
            info.key_id,
            info.serial,
            info.principals.join(","),
            info.valid_before.saturating_sub(now)
        ));
        Ok(())
    };
    match artifact {
        Artifact::Bundle(b) => {
            if b.paseto.is_none() && b.ssh_certificate.is_none() {
                return Err(ClientError::Credential(
                    "the bundle holds no credential".into(),
                ));
            }
            if let Some(t) = &b.paseto {
                token(t, &mut lines)?;
            }
            if let Some(c) = &b.ssh_certificate {
                cert(c, &mut lines)?;
            }
        }
        Artifact::Token(t) => token(t, &mut lines)?,
        Artifact::Certificate(c) => cert(c, &mut lines)?,
    }
    if revocations.is_some() {
        lines.push("not in the revocation list".into());
    }
    Ok(lines)
}
