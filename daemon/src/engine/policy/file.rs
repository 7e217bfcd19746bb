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
    #[serde(default)]
    allow_zero_counter: bool,
    #[serde(default)]
    change_window: Option<String>,
    #[serde(default)]
    rekey_window: Option<String>,
    #[serde(default)]
    rekey_confirm: Option<crate::engine::rekey::ConfirmRule>,
    #[serde(default)]
    require_hardware: Option<RequireHardware>,
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
    #[serde(default)]
    signing_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommanderFile {
    id: String,
    #[serde(default)]
    name: String,
    ssh_key: String,
    #[serde(default)]
    signing_keys: Vec<String>,
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

/// Key types that may sign besides the `ssh_key`.
const SIGNING_KEY_TYPES: [&str; 3] = [
    "ssh-ed25519",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Parses a `signing_keys` entry (an OpenSSH public key line): ssh-ed25519
/// or a FIDO2 security key whose application starts with `ssh:` (as
/// OpenSSH makes them). The comment is dropped.
pub fn parse_signing_key(who: &str, line: &str) -> Result<ssh_key::PublicKey> {
    let mut key = ssh_key::PublicKey::from_openssh(line.trim()).map_err(|e| {
        Error::Policy(format!(
            "{who}: signing key {:?} is not an OpenSSH public key line: {e}",
            short(line)
        ))
    })?;
    let alg = key.algorithm().as_str().to_string();
    if !SIGNING_KEY_TYPES.contains(&alg.as_str()) {
        return Err(Error::Policy(format!(
            "{who}: signing key type {alg} is not accepted; use one of {}",
            SIGNING_KEY_TYPES.join(", ")
        )));
    }
    if let Some(app) = sk_application(&key) {
        if !app.starts_with("ssh:") {
            return Err(Error::Policy(format!(
                "{who}: security key application {app:?} does not start with \"ssh:\" (OpenSSH makes keys for ssh: by default)"
            )));
        }
    }
    key.set_comment("");
    Ok(key)
}

/// The application a security key was made for, if `key` is one.
pub(crate) fn sk_application(key: &ssh_key::PublicKey) -> Option<&str> {
    match key.key_data() {
        ssh_key::public::KeyData::SkEd25519(k) => Some(k.application()),
        ssh_key::public::KeyData::SkEcdsaSha2NistP256(k) => Some(k.application()),
        _ => None,
    }
}

fn short(line: &str) -> String {
    let t = line.trim();
    if t.chars().count() > 40 {
        format!("{}…", t.chars().take(40).collect::<String>())
    } else {
        t.to_string()
    }
}

/// Parses a member's `signing_keys` into the keys that may sign for them
/// (`ssh_key` first) and normalises the lines.
fn signing_keys(
    who: &str,
    identity: &VerifyingKey,
    lines: &mut [String],
) -> Result<Vec<ssh_key::PublicKey>> {
    let mut keys = vec![ssh_key::PublicKey::new(
        ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey(identity.to_bytes())),
        "",
    )];
    for line in lines.iter_mut() {
        let key = parse_signing_key(who, line)?;
        if keys.iter().any(|k| k.key_data() == key.key_data()) {
            return Err(Error::Policy(format!(
                "{who}: signing key {} is listed twice (or is the ssh_key)",
                key.fingerprint(ssh_key::HashAlg::Sha256)
            )));
        }
        *line = key
            .to_openssh()
            .map_err(|e| Error::Policy(format!("{who}: cannot encode a signing key: {e}")))?
            .trim()
            .to_string();
        keys.push(key);
    }
    Ok(keys)
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
            change_window_seconds: f
                .change_window
                .as_deref()
                .map(|s| duration("change_window", s))
                .transpose()?,
            rekey_window_seconds: f
                .rekey_window
                .as_deref()
                .map(|s| duration("rekey_window", s))
                .transpose()?,
            rekey_confirm: f.rekey_confirm,
            require_hardware: f.require_hardware,
            allow_zero_counter: f.allow_zero_counter,
            custodians: f
                .custodians
                .into_iter()
                .map(|c| Member {
                    id: c.id,
                    name: c.name,
                    ssh_key: c.ssh_key,
                    signing_keys: c.signing_keys,
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
                        signing_keys: c.signing_keys,
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
        for (field, v, min, max, hint) in [
            (
                "change_window",
                self.change_window_seconds,
                MIN_CHANGE_WINDOW,
                MAX_CHANGE_WINDOW,
                "between 5 minutes and 7 days (like \"24h\")",
            ),
            (
                "rekey_window",
                self.rekey_window_seconds,
                MIN_REKEY_WINDOW,
                MAX_REKEY_WINDOW,
                "between 1 hour and 30 days (like \"7days\")",
            ),
        ] {
            if let Some(v) = v {
                if !(min..=max).contains(&v) {
                    return Err(Error::Policy(format!("{field} must be {hint}, got {v}s")));
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
            let who = format!("custodian {}", c.id);
            let (key, line) = parse_ssh_ed25519(&who, &c.ssh_key)?;
            c.ssh_key = line;
            let signing = signing_keys(&who, &key, &mut c.signing_keys)?;
            self.keys
                .signing
                .insert((Role::Custodian, c.id.clone()), signing);
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
            let who = format!("commander {}", c.member.id);
            let (key, line) = parse_ssh_ed25519(&who, &c.member.ssh_key)?;
            c.member.ssh_key = line;
            let signing = signing_keys(&who, &key, &mut c.member.signing_keys)?;
            self.keys
                .signing
                .insert((Role::Commander, c.member.id.clone()), signing);
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
        self.check_hardware()?;
        Ok(self)
    }

    /// `require_hardware` names only members who have a security key, and
    /// no security key belongs to two people.
    fn check_hardware(&self) -> Result<()> {
        let mut owner: BTreeMap<Vec<u8>, String> = BTreeMap::new();
        for ((role, id), keys) in &self.keys.signing {
            for k in keys.iter().filter(|k| sk_application(k).is_some()) {
                let blob = k
                    .to_bytes()
                    .map_err(|e| Error::Policy(format!("cannot encode a signing key: {e}")))?;
                let me = format!("{} {id}", role.name());
                if let Some(other) = owner.insert(blob, me.clone()) {
                    if other != me && !self.same_person_by_id(&other, &me) {
                        return Err(Error::Policy(format!(
                            "{other} and {me} list the same security key {}: each key belongs to one person",
                            k.fingerprint(ssh_key::HashAlg::Sha256)
                        )));
                    }
                }
            }
        }
        for role in [Role::Custodian, Role::Commander] {
            if !self.hardware_required(role) {
                continue;
            }
            let ids: Vec<String> = match role {
                Role::Custodian => self.custodian_ids(),
                Role::Commander => self
                    .commanders
                    .iter()
                    .map(|c| c.member.id.clone())
                    .collect(),
            };
            let without: Vec<String> = ids
                .into_iter()
                .filter(|id| {
                    !self
                        .signing_keys(role, id)
                        .iter()
                        .any(|k| sk_application(k).is_some())
                })
                .collect();
            if !without.is_empty() {
                return Err(Error::Policy(format!(
                    "require_hardware.{}s is set but {} {} no security key in signing_keys: add an sk-ssh-ed25519@openssh.com or sk-ecdsa-sha2-nistp256@openssh.com key (ssh-keygen -t ed25519-sk) for each, or unset it",
                    role.name(),
                    without.join(", "),
                    if without.len() == 1 { "has" } else { "have" }
                )));
            }
        }
        Ok(())
    }

    /// `custodian X` and `commander Y` are one person (same id or same ssh_key).
    fn same_person_by_id(&self, a: &str, b: &str) -> bool {
        let split = |s: &str| {
            s.split_once(' ')
                .map(|(r, id)| (r.to_string(), id.to_string()))
        };
        match (split(a), split(b)) {
            (Some((ra, ia)), Some((rb, ib))) if ra == "custodian" && rb == "commander" => {
                self.same_person(&ia, &ib)
            }
            (Some((ra, ia)), Some((rb, ib))) if ra == "commander" && rb == "custodian" => {
                self.same_person(&ib, &ia)
            }
            _ => false,
        }
    }
}
