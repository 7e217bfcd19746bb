//! breakglass-daemon: the quorum break-glass daemon, as a library and the
//! `breakglassd` binary.
//!
//! A root key R is split among custodians (Shamir, vsss-rs). The daemon holds
//! only the seal of the authority seed S under a key derived from R, the share
//! commitments, and the policy. When a quorum of custodians submits signed,
//! committed shares inside a request's window, the daemon rebuilds R in memory,
//! opens the seal, derives the authority key A, mints a short-lived credential,
//! and wipes every secret it touched.
//!
//! Layout:
//! - [`engine`]: policy, request state machine, signature and share checks; no I/O.
//! - [`crypto`]: key hierarchy: secrets, split/combine, seal, authority, minting, age envelopes.
//! - [`store`]: redb state and the hash-chained audit log.
//! - [`service`]: the operations, combining the three above with one lock and one commit each.
//! - [`server`]: tonic over TLS; handlers only translate.
//! - [`ceremony`]: `breakglassd init`.
//! - [`config`] and [`webhook`]: run-time configuration and notification delivery from the durable outbox.
//! - [`hardening`]: no core dumps, not dumpable, memory locked; run first by `init` and `serve`.
//!
//! Threat model, in short: a network attacker, a custodian or commander acting
//! alone, a stolen disk, and replayed or forged calls must not be able to
//! mint. Fewer than `threshold` custodians learn nothing about R; the disk
//! alone holds only ciphertext and hashes. A root attacker on the daemon host
//! during an unlock is out of scope: they can read memory while R exists.

pub mod ceremony;
pub mod config;
pub mod crypto;
pub mod engine;
pub mod error;
pub mod hardening;
pub mod server;
pub mod service;
pub mod store;
pub mod webhook;

pub use error::{Error, Result};
