//! Webhook delivery from the durable outbox.
//!
//! Every audit entry a webhook wants gets an outbox item in the same redb
//! transaction as the entry, so a restart loses no pending notification. This
//! task sends due items, removes them on a 2xx answer, and otherwise retries
//! with exponential backoff (1 s doubling to 5 min).
//!
//! Each delivery is a JSON POST: `text` (a Slack-compatible one-line summary),
//! `event` (the audit entry, as in the export), `daemon_id`, `webhook`. Headers:
//! `X-Breakglass-Timestamp: <unix seconds>` and
//! `X-Breakglass-Signature: v1=<hex HMAC-SHA256(secret, timestamp "." body)>`,
//! plus `X-Breakglass-Delivery: <seq>-<webhook>` as an idempotency key.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::config::Webhook;
use crate::engine::event::Event;
use crate::ops::Daemon;
use crate::store::audit::AuditEntry;
use crate::store::OutboxState;
use breakglass_formats::audit::summary as plain_summary;

/// Longest wait between attempts.
pub const MAX_BACKOFF: u64 = 300;

#[derive(Serialize)]
struct Delivery<'a> {
    text: String,
    event: &'a AuditEntry,
    daemon_id: &'a str,
    webhook: &'a str,
}

/// `v1=<hex HMAC-SHA256(secret, timestamp "." body)>`.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A one-line, Slack-friendly summary of an entry: the plain summary with a
/// marker for the events people must not miss, and who and what in bold on an
/// open request.
pub fn summary(e: &AuditEntry) -> String {
    let marker = match &e.event {
        Event::RequestOpened { .. } => ":rotating_light: ",
        Event::ShareRejected { .. } => ":warning: ",
        Event::AttestationDue { .. } | Event::DrillDue { .. } => ":hourglass: ",
        Event::DrillOpened { .. } => ":test_tube: ",
        Event::QuorumReached { .. } => ":unlock: ",
        Event::CredentialRevoked { .. } => ":no_entry: ",
        _ => "",
    };
    let mut text = plain_summary(e);
    if let Event::RequestOpened {
        requester, scope, ..
    } = &e.event
    {
        text = text.replacen(
            &format!("{requester} asks for emergency access to {scope} "),
            &format!("*{requester}* asks for emergency access to *{scope}* "),
            1,
        );
    }
    format!("{marker}{text}")
}

fn backoff(attempts: u32) -> u64 {
    1u64.checked_shl(attempts.min(16))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// Sends one item; Ok on a 2xx answer.
async fn send(
    client: &reqwest::Client,
    hook: &Webhook,
    daemon_id: &str,
    entry: &AuditEntry,
    now: u64,
) -> Result<(), String> {
    let body = serde_json::to_vec(&Delivery {
        text: summary(entry),
        event: entry,
        daemon_id,
        webhook: &hook.name,
    })
    .map_err(|e| e.to_string())?;
    let resp = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("x-breakglass-timestamp", now.to_string())
        .header(
            "x-breakglass-signature",
            signature(&hook.secret, now, &body),
        )
        .header(
            "x-breakglass-delivery",
            format!("{}-{}", entry.seq, hook.name),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", resp.status()))
    }
}

/// Delivers the outbox until the task is dropped.
pub async fn run(daemon: Arc<Daemon>, hooks: Vec<Webhook>) {
    if hooks.is_empty() {
        return;
    }
    let hooks: HashMap<String, Webhook> = hooks.into_iter().map(|h| (h.name.clone(), h)).collect();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks disabled: cannot build the HTTP client");
            return;
        }
    };
    let wake = daemon.wake();
    loop {
        let now = daemon.now();
        let d = daemon.clone();
        let due = tokio::task::spawn_blocking(move || d.store().outbox_due(now, 64)).await;
        let due = match due {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "reading the webhook outbox failed");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        for (seq, name, st) in due {
            let d = daemon.clone();
            let entry = match tokio::task::spawn_blocking(move || d.store().audit_entry(seq)).await
            {
                Ok(Ok(Some(e))) => e,
                _ => continue,
            };
            let result = match hooks.get(&name) {
                Some(h) => send(&client, h, &daemon.meta().daemon_id, &entry, now).await,
                None => Err(format!("webhook `{name}` is no longer configured")),
            };
            let d = daemon.clone();
            let name2 = name.clone();
            let outcome = match result {
                Ok(()) => {
                    tracing::debug!(seq, webhook = %name, "webhook delivered");
                    tokio::task::spawn_blocking(move || d.store().outbox_done(seq, &name2)).await
                }
                Err(why) => {
                    let next = OutboxState {
                        attempts: st.attempts + 1,
                        next_at: now + backoff(st.attempts),
                        last_error: why.clone(),
                    };
                    tracing::warn!(seq, webhook = %name, attempts = next.attempts, error = %why, "webhook delivery failed; will retry");
                    tokio::task::spawn_blocking(move || d.store().outbox_retry(seq, &name2, &next))
                        .await
                }
            };
            if let Ok(Err(e)) = outcome {
                tracing::error!(error = %e, "updating the webhook outbox failed");
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_over_timestamp_and_body() {
        let s = signature(b"0123456789abcdef", 1700000000, b"{}");
        assert!(s.starts_with("v1=") && s.len() == 3 + 64);
        assert_ne!(s, signature(b"0123456789abcdef", 1700000001, b"{}"));
        assert_ne!(s, signature(b"0123456789abcdeF", 1700000000, b"{}"));
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!((backoff(0), backoff(1), backoff(3)), (1, 2, 8));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
