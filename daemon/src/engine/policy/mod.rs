//! The policy: who the custodians and commanders are, the threshold, scopes,
//! windows and TTL caps, and the decisions that depend on it alone (who may
//! open what, for how long; which SSH key a scope needs; separation of
//! duties; the bound on open requests). Parsed from TOML once
//! ([`file`]), validated, and stored by the ceremony as canonical JSON whose
//! SHA-256 is the policy digest (bound into the seal, so a changed policy
//! cannot unseal).

mod file;

pub use file::{check_id, parse_signing_key, parse_ssh_ed25519};

/// A policy stored inside another record: written as the policy's JSON, read
/// back through [`Policy::validated`] (the parsed keys are not stored).
pub mod validated_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Policy;

    /// Writes the policy's JSON.
    pub fn serialize<S: Serializer>(p: &Policy, s: S) -> Result<S::Ok, S::Error> {
        p.serialize(s)
    }

    /// Reads a policy and validates it.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Policy, D::Error> {
        Policy::deserialize(d)?
            .validated()
            .map_err(serde::de::Error::custom)
    }
}

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
/// How often each custodian should prove her share, by default (90 days).
pub const DEFAULT_ATTEST_EVERY: u64 = 90 * 86_400;
/// How often the real quorum should run a live drill, by default (180 days).
pub const DEFAULT_DRILL_EVERY: u64 = 180 * 86_400;
/// Shortest `attest_every` or `drill_every` (a day: a shorter one would make
/// every custodian overdue all the time).
pub const MIN_READINESS_PERIOD: u64 = 86_400;
/// Longest `attest_every` or `drill_every` (two years).
pub const MAX_READINESS_PERIOD: u64 = 2 * 365 * 86_400;
/// How long a change request collects approvals, by default (24 hours).
pub const DEFAULT_CHANGE_WINDOW: u64 = 86_400;
/// Shortest and longest `change_window` (5 minutes, 7 days).
pub const MIN_CHANGE_WINDOW: u64 = 300;
/// See [`MIN_CHANGE_WINDOW`].
pub const MAX_CHANGE_WINDOW: u64 = 7 * 86_400;
/// How long a dealt epoch waits for its confirmations, by default (7 days).
pub const DEFAULT_REKEY_WINDOW: u64 = 7 * 86_400;
/// Shortest and longest `rekey_window` (1 hour, 30 days).
pub const MIN_REKEY_WINDOW: u64 = 3600;
/// See [`MIN_REKEY_WINDOW`].
pub const MAX_REKEY_WINDOW: u64 = 30 * 86_400;
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
    /// `ssh-ed25519 AAAA…` public key (comment dropped on validation): the
    /// member's identity, the key share files and credentials are encrypted
    /// to, and a key that may sign.
    pub ssh_key: String,
    /// More keys that may sign this member's calls (comments dropped):
    /// `ssh-ed25519` keys (an agent's) and FIDO2 security keys
    /// (`sk-ssh-ed25519@openssh.com`, `sk-ecdsa-sha2-nistp256@openssh.com`).
    /// Empty is not serialized, so policies written before it keep their digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<String>,
}

/// `require_hardware`: who must sign state-changing calls with a security
/// key, and whether the key must also verify the user (PIN or biometrics).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RequireHardware {
    /// Custodians' calls need a security-key signature.
    #[serde(default)]
    pub custodians: bool,
    /// Commanders' calls need a security-key signature.
    #[serde(default)]
    pub commanders: bool,
    /// Every security-key signature must carry user verification.
    #[serde(default)]
    pub user_verification: bool,
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
    /// How often each custodian should prove her share (`attest_every`),
    /// seconds; none: [`DEFAULT_ATTEST_EVERY`]. This and `drill_every` are
    /// absent from policies written before they existed and are not
    /// serialized when absent, so those policies keep their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attest_every_seconds: Option<u64>,
    /// How often the real quorum should run a live drill (`drill_every`),
    /// seconds; none: [`DEFAULT_DRILL_EVERY`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_every_seconds: Option<u64>,
    /// Whether custodians (not only commanders) may open live drills. Absent
    /// or false is not serialized, so existing policies keep their digest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub custodians_may_drill: bool,
    /// Who must sign with a security key (issue 13). Absent is not
    /// serialized, so existing policies keep their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_hardware: Option<RequireHardware>,
    /// Accept security keys that report a signature counter of 0 on every
    /// signature (some authenticators never count): a cloned key cannot
    /// then be told apart by its counter. Off by default; audited at start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_zero_counter: bool,
    /// How long a change request collects approvals (`change_window`),
    /// seconds; none: [`DEFAULT_CHANGE_WINDOW`]. This, `rekey_window` and
    /// `rekey_confirm` are not serialized when absent, so policies written
    /// before epochs keep their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_window_seconds: Option<u64>,
    /// How long a dealt epoch waits for its new custodians' confirmations
    /// (`rekey_window`), seconds; none: [`DEFAULT_REKEY_WINDOW`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekey_window_seconds: Option<u64>,
    /// How many new custodians must confirm before a dealt epoch commits
    /// (`rekey_confirm`); none: every one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekey_confirm: Option<super::rekey::ConfirmRule>,
    /// Custodians, in share order: custodian `i` holds the share with x = i + 1.
    pub custodians: Vec<Member>,
    /// Commanders.
    pub commanders: Vec<CommanderPolicy>,
    /// Scopes.
    pub scopes: Vec<ScopePolicy>,
    /// Every member's key, parsed once by `validated`. Derived from the keys
    /// above, so not stored and not part of the digest.
    #[serde(skip)]
    keys: Keys,
}

/// Members' keys by id, parsed from their `ssh_key` lines, and every key
/// that may sign for them (`ssh_key` first, then `signing_keys`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Keys {
    custodians: BTreeMap<String, VerifyingKey>,
    commanders: BTreeMap<String, VerifyingKey>,
    signing: BTreeMap<(Role, String), Vec<ssh_key::PublicKey>>,
}

/// Which side of the policy a member is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// A custodian.
    Custodian,
    /// A commander.
    Commander,
}

impl Role {
    /// `custodian` or `commander`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Custodian => "custodian",
            Role::Commander => "commander",
        }
    }
}

impl Policy {
    /// The canonical JSON form (what the digest covers).
    pub fn canonical_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self)
            .map_err(|e| Error::Internal(format!("the policy cannot be encoded: {e}")))
    }

    /// SHA-256 of the canonical JSON.
    pub fn digest(&self) -> Result<[u8; 32]> {
        Ok(Sha256::digest(self.canonical_json()?).into())
    }

    /// How often each custodian should prove her share, seconds.
    pub fn attest_every(&self) -> u64 {
        self.attest_every_seconds.unwrap_or(DEFAULT_ATTEST_EVERY)
    }

    /// How long a change request collects approvals, seconds.
    pub fn change_window(&self) -> u64 {
        self.change_window_seconds.unwrap_or(DEFAULT_CHANGE_WINDOW)
    }

    /// How long a dealt epoch waits for its confirmations, seconds.
    pub fn rekey_window(&self) -> u64 {
        self.rekey_window_seconds.unwrap_or(DEFAULT_REKEY_WINDOW)
    }

    /// How many new custodians must confirm a dealt epoch.
    pub fn confirm_rule(&self) -> super::rekey::ConfirmRule {
        self.rekey_confirm.unwrap_or_default()
    }

    /// How often the real quorum should run a live drill, seconds.
    pub fn drill_every(&self) -> u64 {
        self.drill_every_seconds.unwrap_or(DEFAULT_DRILL_EVERY)
    }

    /// The custodian with this id and their x coordinate (index + 1).
    pub fn custodian(&self, id: &str) -> Result<(u8, &Member)> {
        self.custodians
            .iter()
            .enumerate()
            .find(|(_, c)| c.id == id)
            // n <= 255 is checked by `validated`, so index + 1 fits in u8.
            .map(|(i, c)| (u8::try_from(i + 1).unwrap_or(u8::MAX), c))
            .ok_or_else(|| self.unknown_custodian(id))
    }

    /// The registered key of custodian `id`, parsed when the policy was validated.
    pub fn custodian_key(&self, id: &str) -> Result<&VerifyingKey> {
        self.keys
            .custodians
            .get(id)
            .ok_or_else(|| self.unknown_custodian(id))
    }

    /// The registered key of commander `id`, parsed when the policy was validated.
    pub fn commander_key(&self, id: &str) -> Result<&VerifyingKey> {
        self.keys
            .commanders
            .get(id)
            .ok_or_else(|| self.not_a_commander(id))
    }

    /// Every key that may sign for member `id` in `role`: the `ssh_key`
    /// first, then the `signing_keys`.
    pub fn signing_keys(&self, role: Role, id: &str) -> &[ssh_key::PublicKey] {
        self.keys
            .signing
            .get(&(role, id.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether `role`'s calls need a security-key signature.
    pub fn hardware_required(&self, role: Role) -> bool {
        self.require_hardware.is_some_and(|h| match role {
            Role::Custodian => h.custodians,
            Role::Commander => h.commanders,
        })
    }

    /// Whether security-key signatures must carry user verification.
    pub fn user_verification_required(&self) -> bool {
        self.require_hardware.is_some_and(|h| h.user_verification)
    }

    fn unknown_custodian(&self, id: &str) -> Error {
        Error::UnknownCustodian {
            id: id.to_string(),
            known: self.custodian_ids().join(", "),
        }
    }

    fn not_a_commander(&self, id: &str) -> Error {
        Error::NotACommander {
            id: id.to_string(),
            known: self
                .commanders
                .iter()
                .map(|c| c.member.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The commander with this id.
    pub fn commander(&self, id: &str) -> Result<&CommanderPolicy> {
        self.commanders
            .iter()
            .find(|c| c.member.id == id)
            .ok_or_else(|| self.not_a_commander(id))
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
    fn same_person(&self, custodian: &str, requester: &str) -> bool {
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

/// Text from a caller is data, never terminal control: refuses C0 and C1
/// control characters, DEL, and the Unicode bidirectional overrides and
/// isolates, which could make a custodian's screen show something other than
/// what is stored and signed.
pub fn plain_text(field: &'static str, text: &str) -> Result<()> {
    let bidi = |c: char| {
        matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
    };
    match text.char_indices().find(|(_, c)| c.is_control() || bidi(*c)) {
        None => Ok(()),
        Some((at, c)) => Err(Error::invalid(
            field,
            format!(
                "contains the control character U+{:04X} at byte {at}: send plain text (no escape sequences, no bidirectional overrides)",
                u32::from(c)
            ),
        )),
    }
}

/// A caller's reason, trimmed: refused when longer than [`MAX_REASON_LEN`], when
/// it holds control characters ([`plain_text`]), and when empty if `required`
/// (an open must say why; a cancel or revoke may not).
pub fn reason(text: &str, required: bool) -> Result<&str> {
    plain_text("reason", text)?;
    let t = text.trim();
    if required && t.is_empty() {
        return Err(Error::invalid(
            "reason",
            "is empty: say why emergency access is needed",
        ));
    }
    if t.len() > MAX_REASON_LEN {
        return Err(Error::invalid(
            "reason",
            format!("is {} bytes; at most {MAX_REASON_LEN} are kept", t.len()),
        ));
    }
    Ok(if t.is_empty() { "no reason given" } else { t })
}

impl Policy {
    /// The SSH key a request for `scope` binds: required (and normalised, comment
    /// dropped) when the scope mints certificates, refused when it does not.
    pub fn subject_key(&self, scope: &ScopePolicy, given: &str) -> Result<String> {
        match (scope.mints(CredentialKind::Ssh), given.trim().is_empty()) {
            (true, true) => Err(Error::SshKey(format!(
                "scope `{}` mints an OpenSSH certificate, so the key to certify is needed: pass --ssh-key ~/.ssh/id_ed25519.pub",
                scope.name
            ))),
            (true, false) => breakglass_formats::sshcert::normalise_subject_key(given)
                .map_err(|e| Error::SshKey(e.to_string())),
            (false, true) => Ok(String::new()),
            (false, false) => Err(Error::SshKey(format!(
                "scope `{}` mints no SSH certificate; leave the SSH key out",
                scope.name
            ))),
        }
    }

    /// The bound on requests one commander keeps collecting (each holds an E_req in
    /// memory): `open` are the ids of `commander`'s requests collecting now.
    pub fn check_open_bound(&self, commander: &str, mut open: Vec<String>) -> Result<()> {
        if open.len() as u64 >= u64::from(self.max_open_per_commander) {
            open.sort();
            return Err(Error::TooManyOpen {
                commander: commander.to_string(),
                open: u32::try_from(open.len()).unwrap_or(u32::MAX),
                ids: open.join(", "),
                limit: self.max_open_per_commander,
            });
        }
        Ok(())
    }

    /// Separation of duties: refuses custodian `custodian`'s share for a request
    /// that `requester` opened, when they are the same person and the policy says so.
    pub fn check_separation(
        &self,
        request_id: &str,
        custodian: &str,
        requester: &str,
    ) -> Result<()> {
        if self.separation_of_duties && self.same_person(custodian, requester) {
            return Err(Error::OwnRequest {
                id: request_id.to_string(),
                custodian: custodian.to_string(),
                requester: requester.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
