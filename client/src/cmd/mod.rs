//! One module per command group; each takes its parsed arguments and the
//! connection flags, prints for people, and returns an error for `main` to report.
//!
//! - [`conn`] builds the daemon connection and loads the caller's key from the global flags.
//! - [`key`] runs `keygen`.
//! - [`daemon`] runs `info` and `authority`.
//! - [`revocations`] runs `revocations` (KRL and JSON list).
//! - [`request`] runs `request open|show|list|watch|cancel`.
//! - [`share`] runs `share submit|attest|check`; [`policy`] runs `policy propose|show|approve|cancel|status` and `share fetch|confirm`.
//! - [`readiness`] runs `readiness`.
//! - [`credential`] runs `credential fetch|revoke|verify`.
//! - [`audit`] runs `audit verify|export|tail`; [`audit_json`] is `audit verify --json`.
//! - [`review`] runs `review`.
//! - [`drill`] runs `drill` (feature `drill`); [`live_drill`] runs `drill --live` (any build).
//! - [`docs`] prints shell completions and the man page.

pub(crate) mod audit;
pub(crate) mod audit_json;
pub(crate) mod conn;
pub(crate) mod credential;
pub(crate) mod daemon;
pub(crate) mod docs;
pub(crate) mod drill;
pub(crate) mod key;
pub(crate) mod live_drill;
pub(crate) mod policy;
pub(crate) mod readiness;
pub(crate) mod request;
pub(crate) mod review;
pub(crate) mod revocations;
pub(crate) mod share;
