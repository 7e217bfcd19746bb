//! What a policy change changes: the summary a custodian reads before she
//! approves a change request (DESIGN.md "Epochs").
//!
//! The summary is computed from the two policies' canonical JSON (the bytes
//! whose SHA-256 is the policy digest), not from anything the daemon says
//! about them. The daemon computes it to publish and audit it; the CLI
//! computes it again from the current and the proposed policy after checking
//! both digests, so the screen a custodian approves from cannot differ from
//! the change she signs (a daemon or a proxy cannot show "adds a scope" for a
//! change that also removes a custodian).
//!
//! Members are matched by id, scopes by name. Every other top-level field is a
//! setting; a setting absent from the JSON (a default not serialized) is
//! shown as `default`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why two policy documents cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// The bytes are not a policy's canonical JSON.
    #[error("the {which} policy is not a policy document: {why}")]
    NotAPolicy {
        /// `current` or `proposed`.
        which: &'static str,
        /// What is wrong.
        why: String,
    },
}

/// One setting that changes, with both values as JSON text (`default` when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingChange {
    /// Field name in the policy, e.g. `collection_window_seconds`.
    pub name: String,
    /// Value now.
    pub old: String,
    /// Value after the change.
    pub new: String,
}

/// What a proposed policy changes, compared with the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Custodians in the proposed policy only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custodians_added: Vec<String>,
    /// Custodians in the current policy only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custodians_removed: Vec<String>,
    /// Custodians whose `ssh_key` (identity and share-file key) changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custodian_keys_changed: Vec<String>,
    /// Custodians whose name or `signing_keys` change (their share stays).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custodians_changed: Vec<String>,
    /// The same custodians in another order (their share positions change).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub custodians_reordered: bool,
    /// Threshold now.
    pub threshold_old: u64,
    /// Threshold after the change.
    pub threshold_new: u64,
    /// Commanders in the proposed policy only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commanders_added: Vec<String>,
    /// Commanders in the current policy only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commanders_removed: Vec<String>,
    /// Commanders whose key, name, scopes or signing keys change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commanders_changed: Vec<String>,
    /// Scopes in the proposed policy only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_added: Vec<String>,
    /// Scopes in the current policy only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_removed: Vec<String>,
    /// Scopes whose principals, TTL, credentials or extensions change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_changed: Vec<String>,
    /// Every other field that changes (windows, TTL, freshness, hardware, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingChange>,
    /// True if the change needs new shares: custodians added, removed,
    /// reordered or with a new `ssh_key`, or another threshold. Then the
    /// root key is split anew among the proposed custodians, and every one
    /// of them must fetch and confirm her new share before the change commits.
    pub rekey: bool,
}

fn object<'a>(
    which: &'static str,
    v: &'a Value,
) -> Result<&'a serde_json::Map<String, Value>, ChangeError> {
    v.as_object().ok_or(ChangeError::NotAPolicy {
        which,
        why: "not a JSON object".into(),
    })
}

/// The entries of array `field`, keyed by `key` (in order), or an error.
fn keyed<'a>(
    which: &'static str,
    doc: &'a serde_json::Map<String, Value>,
    field: &str,
    key: &str,
) -> Result<Vec<(String, &'a Value)>, ChangeError> {
    let Some(items) = doc.get(field) else {
        return Ok(Vec::new());
    };
    let items = items.as_array().ok_or_else(|| ChangeError::NotAPolicy {
        which,
        why: format!("`{field}` is not a list"),
    })?;
    items
        .iter()
        .map(|item| {
            item.get(key)
                .and_then(Value::as_str)
                .map(|k| (k.to_string(), item))
                .ok_or_else(|| ChangeError::NotAPolicy {
                    which,
                    why: format!("an entry of `{field}` has no `{key}`"),
                })
        })
        .collect()
}

/// What differs between two keyed lists, names sorted.
struct Diff {
    added: Vec<String>,
    removed: Vec<String>,
    /// `(name, old entry, new entry)`.
    changed: Vec<(String, Value, Value)>,
}

/// Added, removed and changed names between two keyed lists.
fn diff(old: &[(String, &Value)], new: &[(String, &Value)]) -> Diff {
    let old_map: BTreeMap<&str, &Value> = old.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let new_map: BTreeMap<&str, &Value> = new.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let added = new_map
        .keys()
        .filter(|k| !old_map.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    let removed = old_map
        .keys()
        .filter(|k| !new_map.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    let changed = new_map
        .iter()
        .filter_map(|(k, n)| {
            old_map
                .get(k)
                .filter(|o| **o != *n)
                .map(|o| (k.to_string(), (*o).clone(), (*n).clone()))
        })
        .collect();
    Diff {
        added,
        removed,
        changed,
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "default".into(),
        Some(v) => v.to_string(),
    }
}

/// Compares two policies' canonical JSON.
pub fn summarize(current: &[u8], proposed: &[u8]) -> Result<Summary, ChangeError> {
    let parse = |which: &'static str, bytes: &[u8]| {
        serde_json::from_slice::<Value>(bytes).map_err(|e| ChangeError::NotAPolicy {
            which,
            why: e.to_string(),
        })
    };
    let (old_v, new_v) = (parse("current", current)?, parse("proposed", proposed)?);
    let (old, new) = (object("current", &old_v)?, object("proposed", &new_v)?);

    let old_c = keyed("current", old, "custodians", "id")?;
    let new_c = keyed("proposed", new, "custodians", "id")?;
    let Diff {
        added: custodians_added,
        removed: custodians_removed,
        changed,
    } = diff(&old_c, &new_c);
    let mut custodian_keys_changed = Vec::new();
    let mut custodians_changed = Vec::new();
    for (id, o, n) in changed {
        if o.get("ssh_key") != n.get("ssh_key") {
            custodian_keys_changed.push(id);
        } else {
            custodians_changed.push(id);
        }
    }
    let order = |list: &[(String, &Value)], other: &[(String, &Value)]| -> Vec<String> {
        list.iter()
            .filter(|(k, _)| other.iter().any(|(o, _)| o == k))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let custodians_reordered = order(&old_c, &new_c) != order(&new_c, &old_c);

    let threshold = |doc: &serde_json::Map<String, Value>| {
        doc.get("threshold").and_then(Value::as_u64).unwrap_or(0)
    };
    let (threshold_old, threshold_new) = (threshold(old), threshold(new));

    let Diff {
        added: commanders_added,
        removed: commanders_removed,
        changed,
    } = diff(
        &keyed("current", old, "commanders", "id")?,
        &keyed("proposed", new, "commanders", "id")?,
    );
    let commanders_changed = changed.into_iter().map(|(k, _, _)| k).collect();
    let Diff {
        added: scopes_added,
        removed: scopes_removed,
        changed,
    } = diff(
        &keyed("current", old, "scopes", "name")?,
        &keyed("proposed", new, "scopes", "name")?,
    );
    let scopes_changed = changed.into_iter().map(|(k, _, _)| k).collect();

    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let settings = names
        .into_iter()
        .filter(|n| {
            !matches!(
                n.as_str(),
                "custodians" | "commanders" | "scopes" | "threshold"
            )
        })
        .filter(|n| old.get(*n) != new.get(*n))
        .map(|n| SettingChange {
            name: n.clone(),
            old: text(old.get(n)),
            new: text(new.get(n)),
        })
        .collect();

    let rekey = !custodians_added.is_empty()
        || !custodians_removed.is_empty()
        || !custodian_keys_changed.is_empty()
        || custodians_reordered
        || threshold_old != threshold_new;
    Ok(Summary {
        custodians_added,
        custodians_removed,
        custodian_keys_changed,
        custodians_changed,
        custodians_reordered,
        threshold_old,
        threshold_new,
        commanders_added,
        commanders_removed,
        commanders_changed,
        scopes_added,
        scopes_removed,
        scopes_changed,
        settings,
        rekey,
    })
}

fn list(sign: &str, what: &str, names: &[String], out: &mut Vec<String>) {
    if !names.is_empty() {
        out.push(format!("{what} {sign}: {}", names.join(", ")));
    }
}

impl Summary {
    /// True if the proposed policy is the current one.
    pub fn is_empty(&self) -> bool {
        *self
            == Summary {
                threshold_old: self.threshold_old,
                threshold_new: self.threshold_old,
                ..Summary::default()
            }
    }

    /// One line per change, for a person deciding whether to approve.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        list("added", "custodians", &self.custodians_added, &mut out);
        list("removed", "custodians", &self.custodians_removed, &mut out);
        list(
            "with a new ssh_key (share-file key)",
            "custodians",
            &self.custodian_keys_changed,
            &mut out,
        );
        list(
            "with a new name or signing keys",
            "custodians",
            &self.custodians_changed,
            &mut out,
        );
        if self.custodians_reordered {
            out.push("custodians reordered (share positions change)".into());
        }
        if self.threshold_old != self.threshold_new {
            out.push(format!(
                "threshold: {} -> {}",
                self.threshold_old, self.threshold_new
            ));
        }
        list("added", "commanders", &self.commanders_added, &mut out);
        list("removed", "commanders", &self.commanders_removed, &mut out);
        list("changed", "commanders", &self.commanders_changed, &mut out);
        list("added", "scopes", &self.scopes_added, &mut out);
        list("removed", "scopes", &self.scopes_removed, &mut out);
        list("changed", "scopes", &self.scopes_changed, &mut out);
        for s in &self.settings {
            out.push(format!("{}: {} -> {}", s.name, s.old, s.new));
        }
        out.push(if self.rekey {
            "new shares: yes: the root key is split anew; every custodian of the new policy gets a new share and confirms it before the change commits; old shares stop working then".into()
        } else {
            "new shares: no: the same shares unlock under the new policy as soon as a quorum approves".into()
        });
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn doc(custodians: &[(&str, &str)], threshold: u64, extra: &str) -> Vec<u8> {
        let cs: Vec<String> = custodians
            .iter()
            .map(|(id, key)| format!(r#"{{"id":"{id}","name":"","ssh_key":"{key}"}}"#))
            .collect();
        format!(
            r#"{{"threshold":{threshold},"collection_window_seconds":900{extra},"custodians":[{}],"commanders":[{{"id":"ic","ssh_key":"k9","scopes":["prod"]}}],"scopes":[{{"name":"prod","principals":["root"]}}]}}"#,
            cs.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn the_same_policy_changes_nothing_and_needs_no_new_shares() {
        let d = doc(&[("a", "k1"), ("b", "k2")], 2, "");
        let s = summarize(&d, &d).unwrap();
        assert!(s.is_empty());
        assert!(!s.rekey);
        assert_eq!(
            s.lines(),
            vec!["new shares: no: the same shares unlock under the new policy as soon as a quorum approves"]
        );
    }

    #[test]
    fn custodians_out_and_in_with_a_new_threshold_need_new_shares() {
        let old = doc(&[("a", "k1"), ("b", "k2"), ("c", "k3")], 2, "");
        let new = doc(&[("a", "k1"), ("c", "k3"), ("d", "k4"), ("e", "k5")], 3, "");
        let s = summarize(&old, &new).unwrap();
        assert_eq!(s.custodians_added, vec!["d", "e"]);
        assert_eq!(s.custodians_removed, vec!["b"]);
        assert!(!s.custodians_reordered, "a before c in both");
        assert_eq!((s.threshold_old, s.threshold_new), (2, 3));
        assert!(s.rekey);
        let lines = s.lines();
        assert_eq!(lines[0], "custodians added: d, e");
        assert_eq!(lines[1], "custodians removed: b");
        assert_eq!(lines[2], "threshold: 2 -> 3");
        assert!(lines[3].starts_with("new shares: yes"));
    }

    #[test]
    fn a_new_share_file_key_or_another_order_needs_new_shares() {
        let old = doc(&[("a", "k1"), ("b", "k2")], 2, "");
        let s = summarize(&old, &doc(&[("a", "k1"), ("b", "k7")], 2, "")).unwrap();
        assert_eq!(s.custodian_keys_changed, vec!["b"]);
        assert!(s.rekey);
        let s = summarize(&old, &doc(&[("b", "k2"), ("a", "k1")], 2, "")).unwrap();
        assert!(s.custodians_reordered);
        assert!(s.rekey);
    }

    #[test]
    fn settings_scopes_and_commanders_change_without_new_shares() {
        let old = doc(&[("a", "k1")], 1, "");
        let new = String::from_utf8(doc(&[("a", "k1")], 1, r#","max_ttl_seconds":600"#))
            .unwrap()
            .replace("900", "300")
            .replace(r#""scopes":["prod"]"#, r#""scopes":["prod","db"]"#)
            .replace(
                r#"{"name":"prod","principals":["root"]}"#,
                r#"{"name":"prod","principals":["root"]},{"name":"db","principals":["postgres"]}"#,
            );
        let s = summarize(&old, new.as_bytes()).unwrap();
        assert_eq!(s.scopes_added, vec!["db"]);
        assert_eq!(s.commanders_changed, vec!["ic"]);
        assert_eq!(
            s.settings,
            vec![
                SettingChange {
                    name: "collection_window_seconds".into(),
                    old: "900".into(),
                    new: "300".into()
                },
                SettingChange {
                    name: "max_ttl_seconds".into(),
                    old: "default".into(),
                    new: "600".into()
                },
            ]
        );
        assert!(!s.rekey);
        assert!(!s.is_empty());
    }

    #[test]
    fn bytes_that_are_not_a_policy_are_refused_naming_which() {
        let good = doc(&[("a", "k1")], 1, "");
        assert_eq!(
            summarize(b"[1]", &good).unwrap_err(),
            ChangeError::NotAPolicy {
                which: "current",
                why: "not a JSON object".into()
            }
        );
        let e = summarize(&good, br#"{"custodians":[{"name":"x"}]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the proposed policy is not a policy document: an entry of `custodians` has no `id`"
        );
    }
}
