//! breakglass-formats: everything a custodian, a commander or a downstream
//! verifier reads or writes, with no server, no storage and no HTTP client.
//!
//! - [`envelope`]: age envelopes to ssh-ed25519 keys.
//! - [`share_file`]: the custodian's share file, its commitment and the proof of its origin (D's signature).
//! - [`keys`]: the authority public key A in its three spellings, and registered ssh-ed25519 keys.
//! - [`credential`]: the credential bundle and offline verification of its PASETO token.
//! - [`sshcert`]: OpenSSH user certificates (verification, key id, serial) and KRLs.
//! - [`revocation`]: the revocation list entries the daemon signs and the JSON list verifiers read.
//! - [`verify`]: what `breakglass credential verify` does with a file: recognise it, verify it, check revocation.
//! - [`drill`]: the drill statement a passed live drill yields, signed by A.
//! - [`sshsig`]: OpenSSH signatures (SSHSIG) from key files, agents and FIDO2 security keys, and their checks.
//! - [`change`]: what a proposed policy changes (the summary custodians approve from).
//! - [`audit`]: audit events and entries, the hash chain and its checkpoints, plain-text summaries.
//!
//! `breakglass-proto` stays the wire contract (messages, signed payloads,
//! share transport); this crate is what lives in files and in people's hands.
//! Each area has its own documented error enum.

pub mod audit;
pub mod change;
pub mod credential;
pub mod drill;
pub mod envelope;
pub mod keys;
pub mod revocation;
pub mod share_file;
pub mod sshcert;
pub mod sshsig;
pub mod time;
pub mod verify;
