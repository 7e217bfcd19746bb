//! The policy file an operator writes (TOML, durations as `15m`) and the
//! rules every policy must pass, whether it comes from that file at `init` or
//! from the store at start. Validation also parses every member's key once
//! into a [`VerifyingKey`], so no signature check parses a key again.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use super::*;

/// The TOML file an operator writes (durations as `15m`, `1h`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    threshold: u8,
    collection_window: String,
    max_ttl: String,
    #[serde(default)]
    freshness: Option<String>,
    #[serde(default)]
    clock_skew: Option<String>,
    #[serde(default = "default_true")]
    separation_of_duties: bool,
    #[serde(default = "default_max_open")]
    max_open_per_commander: u32,
    #[serde(default)]
    attest_every: Option<String>,
    #[serde(default)]
    drill_every: Option<String>,
    #[serde(default)]
    custodians_may_drill: bool,
    custodians: Vec<CustodianFile>,
    commanders: Vec<CommanderFile>,
    scopes: Vec<ScopeFile>,
}

/// A custodian as written (a misspelt field is refused, never ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustodianFile {
    id: String,
    #[serde(default)]
    name: String,
    ssh_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommanderFile {
    id: String,
    #[serde(default)]
    name: String,
    ssh_key: String,
    scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeFile {
    name: String,
    #[serde(default)]
    principals: Vec<String>,
    #[serde(default)]
    max_ttl: Option<String>,
    #[serde(default = "both_kinds")]
    credentials: Vec<CredentialKind>,
    #[serde(default = "default_extensions")]
    ssh_extensions: Vec<String>,
}

pub(super) fn duration(field: &str, s: &str) -> Result<u64> {
    humantime::parse_duration(s)
        .map(|d| d.as_secs())
        .map_err(|e| {
            Error::Policy(format!(
                "{field} = {s:?} is not a duration like \"15m\" or \"1h\": {e}"
            ))
        })
}

/// Checks an id: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn check_id(what: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::Policy(format!(
            "{what} id {id:?} must be 1 to 64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

/// Parses an `ssh-ed25519 …` line into its ed25519 key and the normalised line
/// (algorithm and base64, no comment).
pub fn parse_ssh_ed25519(who: &str, line: &str) -> Result<(VerifyingKey, String)> {
    breakglass_formats::keys::parse_ssh_ed25519(who, line).map_err(|e| Error::Policy(e.to_string()))
}

impl Policy {
    /// Parses and validates an operator's TOML policy.
    pub fn from_toml(text: &str) -> Result<Policy> {
        let f: PolicyFile = toml::from_str(text).map_err(|e| Error::Policy(e.to_string()))?;
        let max_ttl_seconds = duration("max_ttl", &f.max_ttl)?;
        let mut scopes = Vec::with_capacity(f.scopes.len());
        for s in f.scopes {
            let max = match &s.max_ttl {
                Some(t) => Some(duration(&format!("scope {} max_ttl", s.name), t)?),
                None => None,
            };
            scopes.push(ScopePolicy {
                name: s.name,
                principals: s.principals,
                max_ttl_seconds: max,
                credentials: s.credentials,
                ssh_extensions: s.ssh_extensions,
            });
        }
        let policy = Policy {
            threshold: f.threshold,
            collection_window_seconds: duration("collection_window", &f.collection_window)?,
            max_ttl_seconds,
            freshness_seconds: match &f.freshness {
                Some(s) => duration("freshness", s)?,
                None => DEFAULT_FRESHNESS,
            },
            clock_skew_seconds: match &f.clock_skew {
                Some(s) => duration("clock_skew", s)?,
                None => DEFAULT_CLOCK_SKEW,
            },
            separation_of_duties: f.separation_of_duties,
            max_open_per_commander: f.max_open_per_commander,
            attest_every_seconds: f
                .attest_every
                .as_deref()
                .map(|s| duration("attest_every", s))
                .transpose()?,
            drill_every_seconds: f
                .drill_every
                .as_deref()
                .map(|s| duration("drill_every", s))
                .transpose()?,
            custodians_may_drill: f.custodians_may_drill,
            custodians: f
                .custodians
                .into_iter()
                .map(|c| Member {
                    id: c.id,
                    name: c.name,
                    ssh_key: c.ssh_key,
                })
                .collect(),
            commanders: f
                .commanders
                .into_iter()
                .map(|c| CommanderPolicy {
                    member: Member {
                        id: c.id,
                        name: c.name,
                        ssh_key: c.ssh_key,
                    },
                    scopes: c.scopes,
                })
                .collect(),
            scopes,
            keys: Keys::default(),
        };
        policy.validated()
    }

    /// Parses the canonical JSON the ceremony stored, and validates it again.
    pub fn from_canonical_json(bytes: &[u8]) -> Result<Policy> {
        let p: Policy = serde_json::from_slice(bytes).map_err(|e| Error::Policy(e.to_string()))?;
        p.validated()
    }

    /// Checks every rule and normalises the keys; returns the policy as stored.
    pub fn validated(mut self) -> Result<Policy> {
        self.keys = Keys::default();
        let n = self.custodians.len();
        if self.threshold < MIN_THRESHOLD {
            return Err(Error::Policy(format!(
                "threshold {} is below {MIN_THRESHOLD}: one custodian alone must never unlock",
                self.threshold
            )));
        }
        if n < usize::from(self.threshold) || n > 255 {
            return Err(Error::Policy(format!(
                "{n} custodians with threshold {}: need at least `threshold` and at most 255 custodians",
                self.threshold
            )));
        }
        if self.collection_window_seconds == 0 || self.collection_window_seconds > MAX_WINDOW {
            return Err(Error::Policy(format!(
                "collection_window must be between 1s and {MAX_WINDOW}s, got {}s",
                self.collection_window_seconds
            )));
        }
        if self.max_ttl_seconds == 0 || self.max_ttl_seconds > MAX_TTL_CAP {
            return Err(Error::Policy(format!(
                "max_ttl must be between 1s and {MAX_TTL_CAP}s (7 days), got {}s",
                self.max_ttl_seconds
            )));
        }
        if self.freshness_seconds == 0 || self.freshness_seconds > 600 {
            return Err(Error::Policy(format!(
                "freshness must be between 1s and 600s, got {}s",
                self.freshness_seconds
            )));
        }
        if self.clock_skew_seconds > 3600 {
            return Err(Error::Policy(format!(
                "clock_skew must be at most 1h, got {}s",
                self.clock_skew_seconds
            )));
        }
        for (field, v) in [
            ("attest_every", self.attest_every_seconds),
            ("drill_every", self.drill_every_seconds),
        ] {
            if let Some(v) = v {
                if !(MIN_READINESS_PERIOD..=MAX_READINESS_PERIOD).contains(&v) {
                    return Err(Error::Policy(format!(
                        "{field} must be between 1 day and 2 years (like \"90days\"), got {v}s"
                    )));
                }
            }
        }
        let mut seen = BTreeMap::new();
        for c in &mut self.custodians {
            check_id("custodian", &c.id)?;
            if seen.insert(c.id.clone(), ()).is_some() {
                return Err(Error::Policy(format!(
                    "custodian id `{}` appears twice",
                    c.id
                )));
            }
            let (key, line) = parse_ssh_ed25519(&format!("custodian {}", c.id), &c.ssh_key)?;
            c.ssh_key = line;
            self.keys.custodians.insert(c.id.clone(), key);
        }
        let mut keys = BTreeMap::new();
        for c in &self.custodians {
            if let Some(other) = keys.insert(c.ssh_key.clone(), c.id.clone()) {
                return Err(Error::Policy(format!(
                    "custodians `{other}` and `{}` have the same key: each share needs its own holder",
                    c.id
                )));
            }
        }
        let mut scope_names = BTreeMap::new();
        for s in &self.scopes {
            check_id("scope", &s.name)?;
            if scope_names.insert(s.name.clone(), ()).is_some() {
                return Err(Error::Policy(format!("scope `{}` appears twice", s.name)));
            }
            if s.credentials.is_empty() {
                return Err(Error::Policy(format!(
                    "scope `{}` mints nothing: set credentials = [\"ssh\"], [\"token\"] or both",
                    s.name
                )));
            }
            if s.mints(CredentialKind::Ssh) && s.principals.is_empty() {
                return Err(Error::Policy(format!(
                    "scope `{}` mints SSH certificates but names no principals: a certificate without principals would be valid for every user",
                    s.name
                )));
            }
            for p in &s.principals {
                if p.is_empty()
                    || p.len() > 255
                    || p.contains(',')
                    || p.chars().any(char::is_whitespace)
                {
                    return Err(Error::Policy(format!(
                        "scope `{}` principal {p:?} is not a valid user name",
                        s.name
                    )));
                }
            }
            for e in &s.ssh_extensions {
                if !SSH_EXTENSIONS.contains(&e.as_str()) {
                    return Err(Error::Policy(format!(
                        "scope `{}` ssh extension {e:?} is not one of {}",
                        s.name,
                        SSH_EXTENSIONS.join(", ")
                    )));
                }
            }
            if let Some(t) = s.max_ttl_seconds {
                if t == 0 || t > self.max_ttl_seconds {
                    return Err(Error::Policy(format!(
                        "scope `{}` max_ttl {t}s must be between 1s and the policy max_ttl {}s",
                        s.name, self.max_ttl_seconds
                    )));
                }
            }
        }
        let mut cmd = BTreeMap::new();
        for c in &mut self.commanders {
            check_id("commander", &c.member.id)?;
            if cmd.insert(c.member.id.clone(), ()).is_some() {
                return Err(Error::Policy(format!(
                    "commander id `{}` appears twice",
                    c.member.id
                )));
            }
            let (key, line) =
                parse_ssh_ed25519(&format!("commander {}", c.member.id), &c.member.ssh_key)?;
            c.member.ssh_key = line;
            self.keys.commanders.insert(c.member.id.clone(), key);
            for s in &c.scopes {
                if !scope_names.contains_key(s) {
                    return Err(Error::Policy(format!(
                        "commander `{}` names scope `{s}`, which is not defined in [[scopes]]",
                        c.member.id
                    )));
                }
            }
        }
        if self.max_open_per_commander == 0 {
            return Err(Error::Policy(
                "max_open_per_commander must be at least 1".into(),
            ));
        }
        if self.commanders.is_empty() {
            return Err(Error::Policy(
                "no [[commanders]]: nobody could open a request".into(),
            ));
        }
        Ok(self)
    }
}
