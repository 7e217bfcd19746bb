//! Decoding what callers send, once, at the edge: signatures, page tokens,
//! client-certificate identities. Errors are the daemon's own, as statuses.

use tonic::Status;

use breakglass_proto::pb;

use super::status::to_status;
use crate::error::Error;
use crate::ops::Sig;
use crate::store::Cursor;

/// The identity (subject common name) in a client certificate.
pub fn cert_identity(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(cn)
}

/// A `page_token` as `ListRequests` handed it out (`opened_at:id`), or none.
pub(super) fn page_token(t: &str) -> Result<Option<Cursor>, Status> {
    if t.is_empty() {
        return Ok(None);
    }
    t.split_once(':')
        .and_then(|(at, id)| {
            let ok = !id.is_empty() && id.len() <= 64;
            Some(Cursor {
                opened_at: at.parse().ok()?,
                id: id.to_string(),
            })
            .filter(|_| ok)
        })
        .map(Some)
        .ok_or_else(|| {
            to_status(&Error::invalid(
                "page_token",
                "is not a token this daemon gave: pass the next_page_token of the previous page, or nothing for the newest",
            ))
        })
}

pub(super) fn sig(s: Option<pb::Signature>) -> Result<Sig, Status> {
    let s = s.ok_or_else(|| {
        to_status(&Error::invalid(
            "signature",
            "is missing: every state-changing call is signed",
        ))
    })?;
    if s.signer_id.is_empty() {
        return Err(to_status(&Error::invalid(
            "signature.signer_id",
            "is empty",
        )));
    }
    crate::engine::policy::plain_text("signature.signer_id", &s.signer_id)
        .map_err(|e| to_status(&e))?;
    Ok(Sig {
        signer_id: s.signer_id,
        signed_at: s.signed_at,
        signature: s.signature,
    })
}
