//! Offline verification of credentials against the authority public key A,
//! with no daemon involved: what a downstream system does. Covers the PASETO
//! token, the OpenSSH certificate, and (given a revocation list) revocation;
//! each failure has its own message.

use crate::credential::{self, CredentialBundle, VerifiedToken};
use crate::keys::AuthorityPublic;
use crate::revocation::{RevocationListJson, RevokedItem};
use crate::sshcert::{self, CertError, CertInfo};

/// Why a credential file did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// Not a bundle, a certificate or a token.
    #[error("not a credential bundle, an OpenSSH certificate or a v4.public token")]
    Unrecognised,
    /// JSON that is not a credential bundle.
    #[error("not a credential bundle: {0}")]
    NotBundle(String),
    /// The bundle holds neither a token nor a certificate.
    #[error("the bundle holds no credential")]
    Empty,
    /// A token was asked for and the file has none.
    #[error("{0}")]
    NoToken(&'static str),
    /// The token does not verify.
    #[error("token: {0}")]
    Token(#[from] credential::VerifyError),
    /// The certificate does not verify.
    #[error("ssh certificate: {0}")]
    Certificate(#[from] CertError),
    /// The credential is in the revocation list.
    #[error("{what}: revoked at {} by {} ({}); request {}", .item.revoked_at, .item.revoked_by, .item.reason, .item.request_id)]
    Revoked {
        /// `token` or `ssh certificate`.
        what: &'static str,
        /// The list's entry.
        item: Box<RevokedItem>,
    },
}

type Result<T, E = ArtifactError> = std::result::Result<T, E>;

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
        let b: CredentialBundle =
            serde_json::from_str(t).map_err(|e| ArtifactError::NotBundle(e.to_string()))?;
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
    Err(ArtifactError::Unrecognised)
}

/// Extracts the token from a bundle file's JSON or a bare token.
pub fn token_from(text: &str) -> Result<String> {
    match parse_artifact(text)? {
        Artifact::Bundle(b) => b
            .paseto
            .ok_or(ArtifactError::NoToken("this bundle holds no token")),
        Artifact::Token(t) => Ok(t),
        Artifact::Certificate(_) => Err(ArtifactError::NoToken(
            "this is an SSH certificate, not a token",
        )),
    }
}

/// Verifies a token at `now`.
pub fn verify_token(authority: &AuthorityPublic, token: &str, now: u64) -> Result<VerifiedToken> {
    Ok(credential::verify(authority, token, now)?)
}

/// Verifies an OpenSSH certificate at `now`.
pub fn verify_certificate(authority: &AuthorityPublic, line: &str, now: u64) -> Result<CertInfo> {
    Ok(sshcert::verify(authority, line, now)?)
}

fn revoked(what: &'static str, item: &RevokedItem) -> ArtifactError {
    ArtifactError::Revoked {
        what,
        item: Box::new(item.clone()),
    }
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
            return Err(revoked("token", r));
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
        if let Some(r) = revocations.and_then(|l| l.find_cert(info.serial, &info.key_id)) {
            return Err(revoked("ssh certificate", r));
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
                return Err(ArtifactError::Empty);
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
