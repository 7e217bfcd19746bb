//! Offline verification of credentials against the authority public key A,
//! with no daemon involved: what a downstream system does. Covers the PASETO
//! token, the OpenSSH certificate, and (given a revocation list) revocation;
//! each failure has its own message.

use crate::credential::{self, CredentialBundle, VerifiedToken};
use crate::keys::AuthorityPublic;
use crate::revocation::{RevokedItem, VerifiedRevocations};
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
    /// The revocation list is for another authority than the one checked against.
    #[error("the revocation list is for authority {list}, not {given}: use the list of the daemon that minted this credential")]
    RevocationsForOtherAuthority {
        /// The list's authority (`ssh-ed25519 …`).
        list: String,
        /// The authority given.
        given: String,
    },
    /// The credential is in the revocation list.
    #[error("{what}: revoked at {} by {} ({}); request {}", crate::time::when(.item.revoked_at, *.now), .item.revoked_by, .item.reason, .item.request_id)]
    Revoked {
        /// `token` or `ssh certificate`.
        what: &'static str,
        /// The list's entry.
        item: Box<RevokedItem>,
        /// When it was checked, for the message's relative time.
        now: u64,
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

fn revoked(what: &'static str, item: &RevokedItem, now: u64) -> ArtifactError {
    ArtifactError::Revoked {
        what,
        item: Box::new(item.clone()),
        now,
    }
}

/// One credential in a file that verified, for callers that report it in
/// their own shape (`breakglass credential verify --json`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verified {
    /// A PASETO token and its claims.
    Token(VerifiedToken),
    /// An OpenSSH certificate.
    Certificate(CertInfo),
}

/// Verifies everything in `artifact` at `now`; returns human-readable lines.
pub fn verify_artifact(
    authority: &AuthorityPublic,
    artifact: &Artifact,
    now: u64,
    revocations: Option<&VerifiedRevocations>,
) -> Result<Vec<String>> {
    let mut lines: Vec<String> = verify_artifact_items(authority, artifact, now, revocations)?
        .iter()
        .map(|v| match v {
            Verified::Token(v) => format!(
                "token valid: subject {} · scope {} · request {} · approvers {} · expires {}",
                v.subject,
                v.scope,
                v.request_id,
                v.approvers.join(", "),
                crate::time::when(v.expires_at, now)
            ),
            Verified::Certificate(info) => format!(
                "ssh certificate valid: key id {} · serial {} · principals {} · expires {}",
                info.key_id,
                info.serial,
                info.principals.join(","),
                crate::time::when(info.valid_before, now)
            ),
        })
        .collect();
    if revocations.is_some() {
        lines.push("not in the revocation list".into());
    }
    Ok(lines)
}

/// Verifies everything in `artifact` at `now` (and against `revocations` when
/// given); returns what verified, token first.
pub fn verify_artifact_items(
    authority: &AuthorityPublic,
    artifact: &Artifact,
    now: u64,
    revocations: Option<&VerifiedRevocations>,
) -> Result<Vec<Verified>> {
    if let Some(l) = revocations {
        if l.authority() != authority {
            return Err(ArtifactError::RevocationsForOtherAuthority {
                list: l.authority().ssh(),
                given: authority.ssh(),
            });
        }
    }
    let mut lines = Vec::new();
    let token = |t: &str, lines: &mut Vec<Verified>| -> Result<()> {
        let v = verify_token(authority, t, now)?;
        if let Some(r) = revocations.and_then(|l| l.find_token(&v.request_id)) {
            return Err(revoked("token", r, now));
        }
        lines.push(Verified::Token(v));
        Ok(())
    };
    let cert = |c: &str, lines: &mut Vec<Verified>| -> Result<()> {
        let info = verify_certificate(authority, c, now)?;
        if let Some(r) = revocations.and_then(|l| l.find_cert(info.serial, &info.key_id)) {
            return Err(revoked("ssh certificate", r, now));
        }
        lines.push(Verified::Certificate(info));
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
    Ok(lines)
}
