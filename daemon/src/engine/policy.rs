//! The policy: who the custodians and commanders are, the threshold, scopes,
//! windows and TTL caps. Parsed from TOML once (`Policy::from_toml`), validated,
//! and stored by the ceremony as canonical JSON whose SHA-256 is the policy
//! digest (bound into the seal, so a changed policy cannot unseal).

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Smallest allowed threshold: one custodian alone must never unlock.
pub const MIN_THRESHOLD: u8 = 2;
/// Longest credential anything may ask for (invariant 7: nothing is valid forever).
pub const MAX_TTL_CAP: u64 = 7 * 24 * 3600;
/// Longest collection window.
pub const MAX_WINDOW: u64 = 7 * 24 * 3600;
/// Default freshness window for signatures.
pub const DEFAULT_FRESHNESS: u64 = 120;
/// Longest reason accepted.
pub const MAX_REASON_LEN: usize = 1024;
/// Default backdating of SSH certificates' `valid_after`, for clock skew.
pub const DEFAULT_CLOCK_SKEW: u64 = 120;
/// OpenSSH certificate extensions a scope may grant.
pub const SSH_EXTENSIONS: [&str; 5] = [
    "permit-pty",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-X11-forwarding",
    "permit-user-rc",
];

/// What an unlock mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// An OpenSSH user certificate signed by A.
    Ssh,
    /// A PASETO v4.public token signed by A.
    Token,
}

impl CredentialKind {
    /// `ssh` or `token`.
    pub fn name(self) -> &'static str {
        match self {
            CredentialKind::Ssh => "ssh",
            CredentialKind::Token => "token",
        }
    }
}

fn both_kinds() -> Vec<CredentialKind> {
    vec![CredentialKind::Ssh, CredentialKind::Token]
}

fn default_extensions() -> Vec<String> {
    vec!["permit-pty".to_string()]
}

fn default_skew() -> u64 {
    DEFAULT_CLOCK_SKEW
}

fn default_true() -> bool {
    true
}

/// Default bound on requests one commander may have collecting at once.
pub const DEFAULT_MAX_OPEN: u32 = 3;

fn default_max_open() -> u32 {
    DEFAULT_MAX_OPEN
}

/// A custodian or commander key, as in the policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    /// Stable id used in signatures.
    pub id: String,
    /// Human name.
    #[serde(default)]
    pub name: String,
    /// `ssh-ed25519 AAAA…` public key (comment dropped on validation).
    pub ssh_key: String,
}

/// A commander: a member who may open requests for some scopes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CommanderPolicy {
    /// Identity and key.
    #[serde(flatten)]
    pub member: Member,
    /// Scopes this commander may ask for.
    pub scopes: Vec<String>,
}

/// A scope: what a credential grants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScopePolicy {
    /// Name, e.g. `prod-ssh`.
    pub name: String,
    /// SSH principals the credential carries.
    #[serde(default)]
    pub principals: Vec<String>,
    /// TTL cap for this scope in seconds (defaults to the policy's cap).
    #[serde(default)]
    pub max_ttl_seconds: Option<u64>,
    /// What an unlock mints (default: both).
    #[serde(default = "both_kinds")]
    pub credentials: Vec<CredentialKind>,
    /// OpenSSH certificate extensions (default: `permit-pty` only; no agent forwarding).
    #[serde(default = "default_extensions")]
    pub ssh_extensions: Vec<String>,
}

impl ScopePolicy {
    /// True if this scope mints `kind`.
    pub fn mints(&self, kind: CredentialKind) -> bool {
        self.credentials.contains(&kind)
    }
}

/// A validated policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Policy {
    /// Shares needed to unlock.
    pub threshold: u8,
    /// Seconds a request collects shares.
    pub collection_window_seconds: u64,
    /// Longest credential, seconds.
    pub max_ttl_seconds: u64,
    /// Allowed clock difference for signatures, seconds.
    pub freshness_seconds: u64,
    /// How far back SSH certificates' `valid_after` is set, for clock skew, seconds.
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: u64,
    /// Separation of duties: the requester's own share never counts toward the quorum
    /// (a custodian who is also a commander cannot approve their own request).
    #[serde(default = "default_true")]
    pub separation_of_duties: bool,
    /// Most requests one commander may have collecting at once.
    #[serde(default = "default_max_open")]
    pub max_open_per_commander: u32,
    /// Custodians, in share order: custodian `i` holds the share with x = i + 1.
    pub custodians: Vec<Member>,
    /// Commanders.
    pub commanders: Vec<CommanderPolicy>,
    /// Scopes.
    pub scopes: Vec<ScopePolicy>,
}

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
    custodians: Vec<Member>,
    commanders: Vec<CommanderFile>,
    scopes: Vec<ScopeFile>,
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

fn duration(field: &str, s: &str) -> Result<u64> {
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
    let key = ssh_key::PublicKey::from_openssh(line.trim())
        .map_err(|e| Error::Policy(format!("{who}: ssh_key is not an OpenSSH public key: {e}")))?;
    let ed = key.key_data().ed25519().ok_or_else(|| {
        Error::Policy(format!(
            "{who}: ssh_key must be an ssh-ed25519 key, found {}",
            key.algorithm()
        ))
    })?;
    let vk = VerifyingKey::from_bytes(&ed.0)
        .map_err(|e| Error::Policy(format!("{who}: ssh_key is not a valid ed25519 point: {e}")))?;
    let mut normal = ssh_key::PublicKey::from(key.key_data().clone());
    normal.set_comment("");
    let line = normal
        .to_openssh()
        .map_err(|e| Error::Policy(format!("{who}: cannot re-encode ssh_key: {e}")))?;
    Ok((vk, line.trim().to_string()))
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
            custodians: f.custodians,
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
        };
        policy.validated()
    }

    /// Parses the canonical JSON the ceremony stored, and validates it again.
    pub fn from_canonical_json(bytes: &[u8]) -> Result<Policy> {
        let p: Policy = serde_json::from_slice(bytes).map_err(|e| Error::Policy(e.to_string()))?;
        p.validated()
    }

    /// The canonical JSON form (what the digest covers).
    pub fn canonical_json(&self) -> Vec<u8> {
        // Serialising plain structs of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// SHA-256 of the canonical JSON.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_json()).into()
    }

    /// Checks every rule and normalises the keys; returns the policy as stored.
    pub fn validated(mut self) -> Result<Policy> {
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
        let mut seen = BTreeMap::new();
        for c in &mut self.custodians {
            check_id("custodian", &c.id)?;
            if seen.insert(c.id.clone(), ()).is_some() {
                return Err(Error::Policy(format!(
                    "custodian id `{}` appears twice",
                    c.id
                )));
            }
            c.ssh_key = parse_ssh_ed25519(&format!("custodian {}", c.id), &c.ssh_key)?.1;
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
            c.member.ssh_key =
                parse_ssh_ed25519(&format!("commander {}", c.member.id), &c.member.ssh_key)?.1;
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

    /// The custodian with this id and their x coordinate (index + 1).
    pub fn custodian(&self, id: &str) -> Result<(u8, &Member)> {
        self.custodians
            .iter()
            .enumerate()
            .find(|(_, c)| c.id == id)
            // n <= 255 is checked by `validated`, so index + 1 fits in u8.
            .map(|(i, c)| (u8::try_from(i + 1).unwrap_or(u8::MAX), c))
            .ok_or_else(|| Error::UnknownCustodian {
                id: id.to_string(),
                known: self.custodian_ids().join(", "),
            })
    }

    /// The commander with this id.
    pub fn commander(&self, id: &str) -> Result<&CommanderPolicy> {
        self.commanders
            .iter()
            .find(|c| c.member.id == id)
            .ok_or_else(|| Error::NotACommander {
                id: id.to_string(),
                known: self
                    .commanders
                    .iter()
                    .map(|c| c.member.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The scope with this name.
    pub fn scope(&self, name: &str) -> Result<&ScopePolicy> {
        self.scopes
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::UnknownScope {
                scope: name.to_string(),
                known: self
                    .scopes
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Custodian ids in share order.
    pub fn custodian_ids(&self) -> Vec<String> {
        self.custodians.iter().map(|c| c.id.clone()).collect()
    }

    /// TTL cap for a scope.
    pub fn ttl_cap(&self, scope: &ScopePolicy) -> u64 {
        scope
            .max_ttl_seconds
            .unwrap_or(self.max_ttl_seconds)
            .min(self.max_ttl_seconds)
    }

    /// True if custodian `custodian` is the same person as commander `requester`
    /// (the same id, or the same key).
    pub fn same_person(&self, custodian: &str, requester: &str) -> bool {
        let ck = self
            .custodians
            .iter()
            .find(|c| c.id == custodian)
            .map(|c| c.ssh_key.as_str());
        let rk = self
            .commanders
            .iter()
            .find(|c| c.member.id == requester)
            .map(|c| c.member.ssh_key.as_str());
        custodian == requester || (ck.is_some() && ck == rk)
    }

    /// Checks that `commander` may open a request for `scope` with `ttl` seconds.
    pub fn authorize_open(&self, commander: &str, scope: &str, ttl: u64) -> Result<()> {
        let c = self.commander(commander)?;
        let s = self.scope(scope)?;
        if !c.scopes.iter().any(|x| x == scope) {
            return Err(Error::ScopeNotAllowed {
                commander: commander.to_string(),
                scope: scope.to_string(),
                allowed: c.scopes.join(", "),
            });
        }
        if ttl == 0 {
            return Err(Error::invalid("ttl_seconds", "must be at least 1 second"));
        }
        let max = self.ttl_cap(s);
        if ttl > max {
            return Err(Error::TtlTooLong {
                scope: scope.to_string(),
                requested: ttl,
                max,
            });
        }
        Ok(())
    }
}

/// Parses a member's registered key (validated at load, so this only fails on a damaged store).
pub fn verifying_key(m: &Member) -> Result<VerifyingKey> {
    parse_ssh_ed25519(&m.id, &m.ssh_key).map(|(k, _)| k)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    pub fn ssh_line(sk: &SigningKey) -> String {
        let kp = ssh_key::private::Ed25519Keypair::from_seed(&sk.to_bytes());
        ssh_key::PublicKey::from(kp.public)
            .to_openssh()
            .unwrap_or_default()
    }

    pub fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    pub fn sample_toml(n: u8, k: u8) -> String {
        let mut s = format!(
            "threshold = {k}\ncollection_window = \"15m\"\nmax_ttl = \"1h\"\n\n[[scopes]]\nname = \"prod-ssh\"\nprincipals = [\"root\"]\nmax_ttl = \"30m\"\n\n[[scopes]]\nname = \"prod-db\"\ncredentials = [\"token\"]\n\n"
        );
        for i in 1..=n {
            s.push_str(&format!(
                "[[custodians]]\nid = \"c{i}\"\nname = \"Custodian {i}\"\nssh_key = \"{} c{i}@example\"\n\n",
                ssh_line(&key(i))
            ));
        }
        s.push_str(&format!(
            "[[commanders]]\nid = \"ic\"\nssh_key = \"{}\"\nscopes = [\"prod-ssh\"]\n",
            ssh_line(&key(100))
        ));
        s
    }

    #[test]
    fn parses_and_round_trips() {
        let p = Policy::from_toml(&sample_toml(5, 3)).unwrap();
        assert_eq!(p.threshold, 3);
        assert_eq!(p.collection_window_seconds, 900);
        assert_eq!(p.custodian("c2").unwrap().0, 2);
        assert!(
            !p.custodians[0].ssh_key.contains("example"),
            "comment dropped"
        );
        let again = Policy::from_canonical_json(&p.canonical_json()).unwrap();
        assert_eq!(again, p);
        assert_eq!(again.digest(), p.digest());
    }

    #[test]
    fn rejects_bad_policies() {
        let cases = [
            (sample_toml(5, 1), "threshold 1 is below 2"),
            (sample_toml(2, 3), "2 custodians with threshold 3"),
            (
                sample_toml(3, 2).replace("\"15m\"", "\"soon\""),
                "not a duration",
            ),
            (
                sample_toml(3, 2).replace("max_ttl = \"1h\"", "max_ttl = \"30d\""),
                "max_ttl must be between",
            ),
            (
                sample_toml(3, 2).replace("scopes = [\"prod-ssh\"]", "scopes = [\"nope\"]"),
                "not defined",
            ),
            (
                sample_toml(3, 2).replace("id = \"c2\"", "id = \"c1\""),
                "appears twice",
            ),
            (
                sample_toml(3, 2).replace("id = \"c2\"", "id = \"bad id\""),
                "must be 1 to 64",
            ),
            (
                sample_toml(3, 2).replace("ssh-ed25519", "ssh-rsa"),
                "ssh_key",
            ),
        ];
        for (toml, want) in cases {
            let err = Policy::from_toml(&toml).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn authorize_open_checks_commander_scope_and_ttl() {
        let p = Policy::from_toml(&sample_toml(3, 2)).unwrap();
        assert!(p.authorize_open("ic", "prod-ssh", 1800).is_ok());
        assert!(matches!(
            p.authorize_open("c1", "prod-ssh", 60),
            Err(Error::NotACommander { .. })
        ));
        assert!(matches!(
            p.authorize_open("ic", "prod-db", 60),
            Err(Error::ScopeNotAllowed { .. })
        ));
        assert!(matches!(
            p.authorize_open("ic", "nope", 60),
            Err(Error::UnknownScope { .. })
        ));
        assert!(matches!(
            p.authorize_open("ic", "prod-ssh", 1801),
            Err(Error::TtlTooLong { max: 1800, .. })
        ));
        assert!(matches!(
            p.authorize_open("ic", "prod-ssh", 0),
            Err(Error::InvalidArgument { .. })
        ));
    }
}
