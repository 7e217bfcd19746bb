//! The one place where a daemon [`Error`] becomes a gRPC status.

use tonic::{Code, Status};

use crate::error::Error;

/// Maps an error to its gRPC status; the message is the error's own text.
pub fn to_status(e: &Error) -> Status {
    let code = match e {
        Error::InvalidArgument { .. }
        | Error::TtlTooLong { .. }
        | Error::ShareMalformed { .. }
        | Error::ShareCommitmentMismatch { .. }
        | Error::UnknownScope { .. }
        | Error::InvalidPolicy(_)
        | Error::NoChange { .. }
        | Error::CommitmentDiffers { .. }
        | Error::SshKey(_) => Code::InvalidArgument,
        Error::UnknownCustodian { .. }
        | Error::NotACommander { .. }
        | Error::ScopeNotAllowed { .. }
        | Error::AttestationNotYours { .. }
        | Error::DrillNotAllowed { .. }
        | Error::NotInPendingEpoch { .. }
        | Error::NotRequester { .. }
        | Error::NotAllowedToCancel { .. }
        | Error::CancelOwnRemoval { .. }
        | Error::NotAllowedToRevoke { .. }
        | Error::OwnRequest { .. }
        | Error::CertMismatch { .. } => Code::PermissionDenied,
        Error::TooManyOpen { .. } | Error::RateLimited(_) => Code::ResourceExhausted,
        Error::BadSignature { .. } | Error::StaleSignature { .. } => Code::Unauthenticated,
        Error::SignatureRefused { .. } => Code::PermissionDenied,
        Error::RequestNotFound { .. } | Error::AttestationNotFound { .. } => Code::NotFound,
        Error::RequestExists { .. }
        | Error::DuplicateShare { .. }
        | Error::AlreadyConfirmed { .. }
        | Error::AlreadyRevoked { .. } => Code::AlreadyExists,
        Error::RequestClosed { .. }
        | Error::WindowClosed { .. }
        | Error::NoCredential { .. }
        | Error::AttestationUsed { .. }
        | Error::DrillGrantsNothing { .. }
        | Error::DrillInProgress { .. }
        | Error::DrillCannotReachQuorum { .. }
        | Error::ChangeCannotReachQuorum { .. }
        | Error::AttestationExpired { .. }
        | Error::WrongEpoch { .. }
        | Error::PendingClosed { .. }
        | Error::PendingExpired { .. }
        | Error::PendingNotReady { .. }
        | Error::RekeyOpen { .. }
        | Error::ChangeOpen { .. }
        | Error::WrongKind { .. }
        | Error::ApprovedOtherPolicy { .. }
        | Error::NotThePendingEpoch { .. }
        | Error::NoPendingEpoch { .. }
        | Error::PendingKeyChanged { .. }
        | Error::CredentialRevoked { .. } => Code::FailedPrecondition,
        Error::EpochChanged { .. } => Code::Aborted,
        Error::Storage(_) => Code::Unavailable,
        Error::Policy(_)
        | Error::StateMissing { .. }
        | Error::StateCorrupt { .. }
        | Error::UnsafePermissions { .. }
        | Error::StateLocked { .. }
        | Error::StateUnreadable { .. }
        | Error::AlreadyInitialised { .. }
        | Error::Reconstruction(_)
        | Error::Internal(_)
        | Error::Io { .. } => Code::Internal,
    };
    if code == Code::Internal || code == Code::Unavailable {
        tracing::error!(error = %e, "call failed");
    }
    Status::new(code, e.to_string())
}
