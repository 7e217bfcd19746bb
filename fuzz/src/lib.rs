//! Shared pieces of the breakglass fuzz targets (`fuzz_targets/*.rs`).
//!
//! - [`fixture`]: the fixed world every target runs against: a policy of
//!   three custodians and one commander with keys from fixed seeds, a fixed
//!   request ephemeral key, one collecting and one unlocked request, share
//!   commitments, an authority key and an age identity. Built once per process.
//! - [`frames`]: splits a fuzz input into fields (and builds such inputs for seeds).
//! - [`calls`]: what the daemon does with a decoded gRPC call before it changes
//!   any state, re-done over the fixture instead of a store.
//!
//! Every target must return normally on every input: a panic is a finding.

#![forbid(unsafe_code)]

pub mod calls;
pub mod fixture;
pub mod frames;
