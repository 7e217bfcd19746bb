//! The client's one error enum.

/// Everything that can go wrong on the client side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The daemon could not be reached or the TLS handshake failed.
    #[error("cannot reach the daemon at {addr}: {why}")]
    Connect {
        /// Address.
        addr: String,
        /// Why.
        why: String,
    },
    /// The daemon refused the call. Only the code and the daemon's message are
    /// shown: the status is not a `source`, so tonic's own rendering of it
    /// (`status: …, message: …, details: …`) never follows in a chain.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(tonic::Status),
    /// A key file could not be used.
    #[error("key {path}: {why}")]
    Key {
        /// Path.
        path: String,
        /// Why.
        why: String,
    },
    /// A share file could not be used.
    #[error("share file {path}: {why}")]
    ShareFile {
        /// Path.
        path: String,
        /// Why.
        why: String,
    },
    /// What the daemon sent does not verify (signature, digest, ids).
    #[error("the daemon's answer does not verify: {0}")]
    Untrusted(String),
    /// The caller's key is not registered in the daemon's policy for this role.
    #[error("{0}")]
    NotRegistered(String),
    /// A credential does not verify.
    #[error("credential does not verify: {0}")]
    Credential(String),
    /// Local file trouble.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Anything else, with its explanation.
    #[error("{0}")]
    Other(String),
}

impl From<tonic::Status> for ClientError {
    fn from(s: tonic::Status) -> Self {
        ClientError::Status(s)
    }
}

impl From<breakglass_formats::verify::ArtifactError> for ClientError {
    fn from(e: breakglass_formats::verify::ArtifactError) -> Self {
        ClientError::Credential(e.to_string())
    }
}

impl From<breakglass_formats::keys::KeyError> for ClientError {
    fn from(e: breakglass_formats::keys::KeyError) -> Self {
        ClientError::Other(e.to_string())
    }
}

/// gRPC code names as people read them.
pub fn code_name(c: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match c {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Result with [`ClientError`].
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
