//! The key hierarchy (DESIGN.md "Key hierarchy"): secret types, Shamir
//! split/combine of R, the seal of S under K_R, dealing an epoch (a new R
//! split, S sealed under it, the share files), derivation of the authority
//! key A, minting credentials, and the daemon key D's signatures. Formats
//! (share files, bundles, envelopes) live in `breakglass_formats`.

pub mod authority;
pub mod credential;
pub mod daemon_key;
pub mod deal;
pub mod integrity;
pub mod seal;
pub mod secret;
pub mod shamir;
pub mod sshcert;
