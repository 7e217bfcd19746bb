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
//! Layout (modules are private; what the binary, the tests and the fuzz
//! targets use is re-exported below):
//! - `engine` (public, for the fuzz targets): policy, request states that
//!   own their secrets, signature and share checks; pure, no I/O, no clock,
//!   no OS randomness.
//! - `ops`: one file per operation (open, submit, unlock, cancel, revoke,
//!   fetch, read, lifecycle): decode → load → decide (engine) → crypto → one
//!   store commit, under one lock.
//! - `crypto`: key hierarchy: secret types, split/combine, seal, authority,
//!   minting, the daemon key D's signatures.
//! - `store`: redb state, the hash-chained audit log, the webhook outbox, the
//!   daemon key file.
//! - `server`: tonic over TLS; handlers only translate to and from `ops`.
//! - `ceremony`: `breakglassd init`.
//! - `config` and `webhook`: run-time configuration and notification delivery
//!   from the durable outbox.
//! - `hardening`: no core dumps, not dumpable, memory locked; run first by
//!   `init` and `serve`.
//!
//! Formats a custodian, commander or verifier reads (share files, bundles,
//! audit entries, revocation lists) live in `breakglass_formats`; the wire
//! contract in `breakglass_proto`.
//!
//! Threat model, in short: a network attacker, a custodian or commander acting
//! alone, a stolen disk, and replayed or forged calls must not be able to
//! mint. Fewer than `threshold` custodians learn nothing about R; the disk
//! alone holds only ciphertext and hashes. A root attacker on the daemon host
//! during an unlock is out of scope: they can read memory while R exists.

mod ceremony;
mod config;
mod crypto;
pub mod engine;
mod error;
mod hardening;
mod metrics;
mod ops;
mod server;
mod store;
mod webhook;

pub use ceremony::{create_private_dir, init, write_new_private, CeremonyOutput};
pub use config::{routes, Config, Webhook};
pub use crypto::authority::AuthorityKey;
pub use crypto::credential::{mint as mint_credential, Grant, SshParams};
pub use crypto::secret::AuthoritySeed;
pub use error::{Error, Result};
pub use hardening::{harden_process, HardeningReport};
pub use metrics::{Gauges, Metrics};
pub use ops::{
    scrub_stack, system_clock, system_rng, Clock, Daemon, OpenCall, Progress, RevocationList, Rng,
    Sig, SubmitCall,
};
pub use server::decode::cert_identity;
pub use server::limit::Limits;
pub use server::metrics_http::serve_metrics;
pub use server::status::to_status;
pub use server::tls::{fingerprint, load_or_create, TlsMaterial};
pub use server::{
    install_crypto_provider, run, run_with, serve_duplex_insecure, ServeOptions, MAX_MESSAGE_BYTES,
};
pub use store::audit::AuditEntry;
pub use store::{
    check_modes, EpochStep, Meta, NewEpoch, Route, Store, StoredEpoch, DAEMON_KEY_FILE, DB_FILE,
};
pub use webhook::run as run_webhooks;
