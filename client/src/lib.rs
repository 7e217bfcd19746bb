//! breakglass-client: the typed client library behind the `breakglass` CLI.
//!
//! - [`connect`]: TLS to the daemon, trusting a CA file or a pinned certificate fingerprint.
//! - [`identity`]: the caller's OpenSSH ed25519 key: signs calls, decrypts share files and credentials.
//! - [`signer`]: where call signatures come from: the key file, ssh-agent, or a FIDO2 security key (OpenSSH signatures).
//! - [`api`]: the typed calls; every answer's daemon signature and digest are checked.
//! - [`drill`]: a whole quorum unlock against a temporary daemon on loopback TLS
//!   (feature `drill`, on by default: the only part that links the daemon).
//! - [`review`]: post-incident timeline of a request from the audit log (Markdown, HTML).

pub mod api;
pub mod connect;
#[cfg(feature = "drill")]
pub mod drill;
pub mod error;
pub mod identity;
pub mod review;
pub mod signer;

pub use error::{ClientError, Result};
