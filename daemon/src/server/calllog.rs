//! One operational log line per call (method, peer, caller, request, gRPC
//! code, duration), and the per-method call counters. Never a secret: the
//! signer id a call claims, the request id, the code and the status message,
//! escaped, since it can quote caller text.

use std::net::SocketAddr;
use std::time::Instant;

use tonic::{Code, Request as GrpcRequest, Response, Status};

use breakglass_proto::pb;

use crate::metrics::Metrics;

/// A call being answered.
pub(super) struct CallLog<'a> {
    method: &'static str,
    peer: Option<SocketAddr>,
    signer: Option<String>,
    request_id: Option<String>,
    start: Instant,
    metrics: &'a Metrics,
}

/// The canonical upper-case name of a gRPC code (as in the gRPC spec).
pub(crate) fn code_name(c: Code) -> &'static str {
    match c {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Text for a log line: control characters and other non-printables escaped.
fn shown(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

impl<'a> CallLog<'a> {
    /// Starts the record of a call; `signature` is the one the call carries, if any.
    pub(super) fn begin<T>(
        metrics: &'a Metrics,
        method: &'static str,
        req: &GrpcRequest<T>,
        signature: Option<&pb::Signature>,
        request_id: Option<&str>,
    ) -> CallLog<'a> {
        CallLog {
            method,
            peer: req.remote_addr(),
            signer: signature.map(|s| shown(&s.signer_id)),
            request_id: request_id.filter(|s| !s.is_empty()).map(shown),
            start: Instant::now(),
            metrics,
        }
    }

    /// The request id, once known (an open learns it from its answer).
    pub(super) fn request(&mut self, id: &str) {
        self.request_id = Some(shown(id));
    }

    /// Logs and counts the outcome, and returns it.
    pub(super) fn end<T>(self, out: Result<Response<T>, Status>) -> Result<Response<T>, Status> {
        let code = out.as_ref().err().map_or(Code::Ok, Status::code);
        let name = code_name(code);
        self.metrics.call(self.method, name);
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
        let request = self.request_id.as_deref().unwrap_or("");
        // A signer is authenticated once the call succeeded; otherwise it is
        // only what the call claimed.
        let (caller, claimed) = match (&out, self.signer.as_deref()) {
            (Ok(_), Some(s)) => (s, ""),
            (Err(_), Some(s)) => ("", s),
            (_, None) => ("", ""),
        };
        match &out {
            Ok(_) => tracing::info!(
                target: "breakglass::call",
                method = self.method, peer, caller, request, code = name, ms,
                "call"
            ),
            Err(e) => tracing::info!(
                target: "breakglass::call",
                method = self.method, peer, claimed_signer = claimed, request, code = name, ms,
                message = %shown(e.message()),
                "call refused"
            ),
        }
        out
    }
}
