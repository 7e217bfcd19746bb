//! The quorum engine: policy, request state machine, signature and share
//! checks. No I/O: nothing here imports tokio, tonic, prost or the store; time
//! comes in as `now` (seconds since the epoch) and results go out as new
//! values plus audit records for the caller to persist.

pub mod auth;
pub mod event;
pub mod policy;
pub mod request;
pub mod share;
