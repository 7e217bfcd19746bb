//! The quorum engine: policy, request states, signature and share checks.
//! No I/O: nothing here imports tokio, tonic, prost, redb, `OsRng` or
//! `SystemTime`; time comes in as `now` (seconds since the epoch), randomness
//! as an injected RNG, and results go out as new values plus audit records
//! for the caller to persist.
//!
//! - [`policy`]: the policy file, parsed once into typed keys, and every
//!   policy question (who may open what, separation of duties, the open
//!   bound, reasons, which SSH key a scope needs).
//! - [`attest`]: one-shot attestation keys; a share proven against its
//!   commitment and wiped, never combined (readiness).
//! - [`epoch`]: the current epoch: policy, seal and share commitments.
//! - [`rekey`]: pending epochs between a rekey's quorum and its commit, and
//!   the chain of committed and pending epochs.
//! - [`auth`]: membership, freshness and signature of a call (invariant 4).
//! - [`share`]: a decrypted share checked against its commitment (invariant 5).
//! - [`collecting`]: the live states that own E_req and the shares.
//! - [`readiness`]: who has proven their share lately, and whether a
//!   threshold has (the readiness report).
//! - [`request`]: the plain stored record and what may happen to a closed request.

pub mod attest;
pub mod auth;
pub mod collecting;
pub mod epoch;
pub use breakglass_formats::audit::event;
pub mod policy;
pub mod readiness;
pub mod rekey;
pub mod request;
pub mod share;
