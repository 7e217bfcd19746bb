//! The daemon's run-time configuration (`breakglassd serve --config FILE`):
//! things that may change without a new ceremony, like where notifications go.
//! The policy (who may do what) lives in the sealed state instead.
//!
//! ```toml
//! [[webhooks]]
//! name = "security-slack"
//! url = "https://hooks.slack.com/services/…"
//! secret_file = "/etc/breakglass/security-slack.secret"   # or: secret = "…"
//! events = ["request_opened", "quorum_reached", "credential_minted", "credential_revoked"]  # default: all
//!
//! [[webhooks]]
//! name = "alice"
//! url = "https://hooks.example/alice"
//! secret = "…"
//! custodian = "alice"   # alice's contact: always gets request_opened and quorum_reached
//!
//! [limits]                # state-changing calls; defaults shown
//! per_peer_per_second = 50.0
//! per_peer_burst = 100.0
//! global_per_second = 1000.0
//! global_burst = 2000.0
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::engine::event::EVENT_KINDS;
use crate::engine::policy::Policy;
use crate::error::{Error, Result};
use crate::store::Route;

/// Events every custodian's contact receives: requests and drills she may
/// be asked to approve, and every step of a change of custodians or policy
/// (DESIGN.md "Epochs"), whether she stays, leaves or joins.
pub const CONTACT_EVENTS: [&str; 10] = [
    "request_opened",
    "quorum_reached",
    "drill_opened",
    "drill_passed",
    "change_proposed",
    "change_applied",
    "epoch_dealt",
    "epoch_committed",
    "epoch_cancelled",
    "epoch_expired",
];

/// The configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Webhooks.
    #[serde(default)]
    pub webhooks: Vec<WebhookFile>,
    /// Rate limits on state-changing calls.
    #[serde(default)]
    pub limits: crate::server::limit::Limits,
}

/// One webhook as written in the file. `Debug` does not show the secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    /// Unique name (appears in deliveries and the outbox).
    pub name: String,
    /// `https://…` (or `http://` for loopback receivers).
    pub url: String,
    /// Shared secret for the HMAC signature.
    #[serde(default)]
    pub secret: Option<String>,
    /// File holding the shared secret.
    #[serde(default)]
    pub secret_file: Option<String>,
    /// Event kinds to send (default: all).
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// The custodian whose contact this is.
    #[serde(default)]
    pub custodian: Option<String>,
}

impl std::fmt::Debug for WebhookFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookFile")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "(not shown)"))
            .field("secret_file", &self.secret_file)
            .field("events", &self.events)
            .field("custodian", &self.custodian)
            .finish()
    }
}

/// A validated webhook.
pub struct Webhook {
    /// Name.
    pub name: String,
    /// URL.
    pub url: String,
    /// HMAC key.
    pub secret: Zeroizing<Vec<u8>>,
    /// Event kinds.
    pub kinds: BTreeSet<String>,
}

impl Config {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text)
            .map_err(|e| Error::invalid("--config", format!("{}: {e}", path.display())))
    }

    /// Validates the webhooks against the policy, and the policy of a
    /// pending epoch if one waits for confirmations (so a joining
    /// custodian's contact can be configured before her epoch commits).
    pub fn webhooks(&self, policy: &Policy, pending: Option<&Policy>) -> Result<Vec<Webhook>> {
        let bad = |why: String| Error::invalid("--config", why);
        let mut names = BTreeSet::new();
        let mut out = Vec::new();
        for w in &self.webhooks {
            crate::engine::policy::check_id("webhook", &w.name).map_err(|e| bad(e.to_string()))?;
            if !names.insert(w.name.clone()) {
                return Err(bad(format!("webhook `{}` appears twice", w.name)));
            }
            if !(w.url.starts_with("https://") || w.url.starts_with("http://")) {
                return Err(bad(format!(
                    "webhook `{}`: url must start with https:// (or http:// on loopback)",
                    w.name
                )));
            }
            let secret = match (&w.secret, &w.secret_file) {
                (Some(s), None) => Zeroizing::new(s.as_bytes().to_vec()),
                (None, Some(f)) => Zeroizing::new(
                    std::fs::read_to_string(f)
                        .map_err(|e| bad(format!("webhook `{}`: secret_file {f}: {e}", w.name)))?
                        .trim()
                        .as_bytes()
                        .to_vec(),
                ),
                _ => {
                    return Err(bad(format!(
                        "webhook `{}`: give exactly one of secret or secret_file",
                        w.name
                    )))
                }
            };
            if secret.len() < 16 {
                return Err(bad(format!(
                    "webhook `{}`: the secret must be at least 16 bytes",
                    w.name
                )));
            }
            let mut kinds: BTreeSet<String> = match &w.events {
                Some(list) => list.iter().cloned().collect(),
                None => ["*".to_string()].into_iter().collect(),
            };
            for k in &kinds {
                if !EVENT_KINDS.contains(&k.as_str()) {
                    return Err(bad(format!(
                        "webhook `{}`: unknown event {k:?} (known: {})",
                        w.name,
                        EVENT_KINDS.join(", ")
                    )));
                }
            }
            if kinds.is_empty() && w.custodian.is_none() {
                return Err(bad(format!(
                    "webhook `{}`: events = [] sends nothing; list events or leave it out for all",
                    w.name
                )));
            }
            if let Some(c) = &w.custodian {
                if pending.is_none_or(|p| p.custodian(c).is_err()) {
                    policy
                        .custodian(c)
                        .map_err(|e| bad(format!("webhook `{}`: {e}", w.name)))?;
                }
                kinds.extend(CONTACT_EVENTS.iter().map(|s| s.to_string()));
            }
            out.push(Webhook {
                name: w.name.clone(),
                url: w.url.clone(),
                secret,
                kinds,
            });
        }
        Ok(out)
    }
}

/// The outbox routes for these webhooks.
pub fn routes(hooks: &[Webhook]) -> Vec<Route> {
    hooks
        .iter()
        .map(|w| Route {
            name: w.name.clone(),
            kinds: w.kinds.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets are not printable: a webhook's shared secret never shows in `Debug`.
    #[test]
    fn debug_hides_the_webhook_secret() {
        let w: WebhookFile = toml::from_str(
            "name = \"ops\"\nurl = \"https://hooks.example/x\"\nsecret = \"s3cret-value\"\n",
        )
        .unwrap();
        let shown = format!("{w:?}");
        assert!(!shown.contains("s3cret-value"), "{shown}");
        assert!(shown.contains("(not shown)"), "{shown}");
    }

    /// DESIGN.md "Epochs": every step of a change reaches each custodian's
    /// contact, and a joining custodian's contact is accepted once her epoch
    /// was dealt (it names a custodian of the pending policy), not before.
    #[test]
    fn custodian_contacts_hear_of_changes_and_may_name_a_joining_custodian() {
        use crate::engine::policy::tests::sample_toml;
        let cfg: Config = toml::from_str(
            "[[webhooks]]\nname = \"c4-phone\"\nurl = \"https://hooks.example/c4\"\nsecret = \"0123456789abcdef\"\ncustodian = \"c4\"\nevents = []\n",
        )
        .unwrap();
        let now = Policy::from_toml(&sample_toml(3, 2)).unwrap();
        let next = Policy::from_toml(&sample_toml(4, 2)).unwrap();
        let e = cfg.webhooks(&now, None).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("c4")));
        let hooks = cfg.webhooks(&now, Some(&next)).unwrap();
        for k in [
            "change_proposed",
            "epoch_dealt",
            "epoch_committed",
            "epoch_expired",
        ] {
            assert!(hooks[0].kinds.contains(k), "{k}");
        }
    }
}
