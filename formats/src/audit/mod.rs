//! The audit log's formats: events ([`event`]), hash-chained entries and their
//! verification ([`chain`]), and one-line plain-text summaries ([`summary`])
//! that `audit tail` prints and webhooks decorate.

pub mod chain;
pub mod event;
pub mod summary;

pub use chain::{
    chain, entry_hash, parse_jsonl, verify_chain, verify_log, AuditEntry, ChainError, VerifyReport,
    DOMAIN_AUDIT,
};
pub use event::{Event, Record, EVENT_KINDS};
pub use summary::summary;
