//! The audit log's formats: events ([`event`]), hash-chained entries and their
//! verification ([`chain`]), and one-line plain-text summaries ([`summary`])
//! that `audit tail` prints and webhooks decorate, and the signed trailer that
//! ends an export ([`trailer`]).

pub mod chain;
pub mod event;
pub mod summary;
pub mod trailer;

pub use chain::{
    chain, entry_hash, parse_jsonl, verify_chain, verify_log, AuditEntry, ChainError, VerifyReport,
    DOMAIN_AUDIT,
};
pub use event::{Event, Record, SignedWith, EVENT_KINDS};
pub use summary::summary;
pub use trailer::{parse_export, ExportTrailer, TrailerError, TrailerLine};
