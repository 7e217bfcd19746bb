//! The key hierarchy (DESIGN.md "Key hierarchy"): secret types, Shamir
//! split/combine of R, the seal of S under K_R, derivation of the authority
//! key A, minting and verifying credentials, and age envelopes.

pub mod authority;
pub mod credential;
pub mod envelope;
pub mod seal;
pub mod secret;
pub mod shamir;
pub mod sshcert;
