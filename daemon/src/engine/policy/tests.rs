//! Tests of the parent module.

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

/// The age identity of the ssh-ed25519 key [`key`]`(i)` (what decrypts the share files
/// dealt to a custodian whose `ssh_key` is [`ssh_line`]`(&key(i))`).
pub fn identity(i: u8) -> age::ssh::Identity {
    let kp = ssh_key::private::Ed25519Keypair::from_seed(&[i; 32]);
    let pem = ssh_key::PrivateKey::from(kp)
        .to_openssh(ssh_key::LineEnding::LF)
        .unwrap_or_else(|e| panic!("{e}"));
    age::ssh::Identity::from_buffer(pem.as_bytes(), None).unwrap_or_else(|e| panic!("{e}"))
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
    let again = Policy::from_canonical_json(&p.canonical_json().unwrap()).unwrap();
    assert_eq!(again, p);
    assert_eq!(again.digest().unwrap(), p.digest().unwrap());
    assert!(p.custodian_key("c2").is_ok() && p.commander_key("ic").is_ok());
    assert!(matches!(
        p.custodian_key("ic"),
        Err(Error::UnknownCustodian { .. })
    ));
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

#[test]
fn reasons_are_trimmed_bounded_and_required_for_open() {
    assert_eq!(reason("  db down ", true).unwrap(), "db down");
    assert_eq!(reason("  ", false).unwrap(), "no reason given");
    let empty = reason(" ", true).unwrap_err().to_string();
    assert!(empty.contains("say why"), "{empty}");
    let long = reason(&"x".repeat(2000), false).unwrap_err().to_string();
    assert!(long.contains("at most 1024"), "{long}");
}

#[test]
fn subject_key_follows_the_scope() {
    let p = Policy::from_toml(&sample_toml(3, 2)).unwrap();
    let ssh = p.scope("prod-ssh").unwrap();
    let token = p.scope("prod-db").unwrap();
    let line = format!("{} me@laptop", ssh_line(&key(9)));
    assert_eq!(p.subject_key(ssh, &line).unwrap(), ssh_line(&key(9)));
    assert!(matches!(p.subject_key(ssh, " "), Err(Error::SshKey(m)) if m.contains("--ssh-key")));
    assert_eq!(p.subject_key(token, "").unwrap(), "");
    assert!(
        matches!(p.subject_key(token, &line), Err(Error::SshKey(m)) if m.contains("leave the SSH key out"))
    );
}

#[test]
fn open_bound_and_separation_of_duties() {
    let p = Policy::from_toml(&sample_toml(3, 2)).unwrap();
    assert!(p
        .check_open_bound("ic", vec!["a".into(), "b".into()])
        .is_ok());
    assert!(matches!(
        p.check_open_bound("ic", vec!["c".into(), "a".into(), "b".into()]),
        Err(Error::TooManyOpen { open: 3, limit: 3, ref ids, .. }) if ids == "a, b, c"
    ));
    assert!(p.check_separation("r", "c1", "ic").is_ok());
    assert!(matches!(
        p.check_separation("r", "ic", "ic"),
        Err(Error::OwnRequest { .. })
    ));
    // The same key under two ids is the same person.
    let same_key = sample_toml(3, 2).replace(&ssh_line(&key(100)), &ssh_line(&key(1)));
    let p = Policy::from_toml(&same_key).unwrap();
    assert!(matches!(
        p.check_separation("r", "c1", "ic"),
        Err(Error::OwnRequest { .. })
    ));
    let off = Policy::from_toml(&format!("separation_of_duties = false\n{same_key}")).unwrap();
    assert!(off.check_separation("r", "c1", "ic").is_ok());
}

/// Invariant 9: a misspelt custodian field is refused at `init`, naming it,
/// rather than silently ignored.
#[test]
fn a_misspelt_custodian_field_is_refused() {
    let t = sample_toml(3, 2).replacen("name = \"Custodian 1\"", "nmae = \"Custodian 1\"", 1);
    let e = Policy::from_toml(&t).unwrap_err().to_string();
    assert!(e.contains("unknown field `nmae`"), "{e}");
}

/// Readiness periods: absent means the defaults and leaves the canonical JSON
/// (so the digest the seal binds) as it was; given, they are bounded.
#[test]
fn readiness_periods() {
    let p = Policy::from_toml(&sample_toml(3, 2)).unwrap();
    assert_eq!(p.attest_every(), DEFAULT_ATTEST_EVERY);
    assert_eq!(p.drill_every(), DEFAULT_DRILL_EVERY);
    let json = String::from_utf8(p.canonical_json().unwrap()).unwrap();
    assert!(
        !json.contains("attest_every") && !json.contains("drill_every"),
        "{json}"
    );
    let set = Policy::from_toml(&format!(
        "attest_every = \"30days\"\ndrill_every = \"1y\"\n{}",
        sample_toml(3, 2)
    ))
    .unwrap();
    assert_eq!(set.attest_every(), 30 * 86_400);
    assert!(set.drill_every() > 365 * 86_400);
    assert_ne!(set.digest().unwrap(), p.digest().unwrap());
    let again = Policy::from_canonical_json(&set.canonical_json().unwrap()).unwrap();
    assert_eq!(again, set);
    for (bad, says) in [
        (
            "attest_every = \"1h\"",
            "attest_every must be between 1 day and 2 years",
        ),
        (
            "drill_every = \"5y\"",
            "drill_every must be between 1 day and 2 years",
        ),
        (
            "attest_every = \"often\"",
            "attest_every = \"often\" is not a duration",
        ),
    ] {
        let e = Policy::from_toml(&format!("{bad}\n{}", sample_toml(3, 2))).unwrap_err();
        assert!(e.to_string().contains(says), "{bad}: {e}");
    }
}

/// An `sk-ssh-ed25519@openssh.com` public key line for `application`.
pub fn sk_line(i: u8, application: &str) -> String {
    let data = ssh_key::public::KeyData::SkEd25519(ssh_key::public::SkEd25519::new(
        ssh_key::public::Ed25519PublicKey(key(i).verifying_key().to_bytes()),
        application.to_string(),
    ));
    ssh_key::PublicKey::new(data, "yubikey")
        .to_openssh()
        .unwrap()
}

/// Adds `signing_keys = [..]` to custodian `c{i}`.
fn with_signing_keys(toml: &str, i: u8, keys: &[String]) -> String {
    let marker = format!("id = \"c{i}\"\n");
    let list = keys
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    toml.replace(&marker, &format!("{marker}signing_keys = [{list}]\n"))
}

/// Issue 13: signing keys are parsed and normalised once; a policy without
/// them (or without require_hardware) keeps the digest it always had.
#[test]
fn signing_keys_and_hardware() {
    let plain = Policy::from_toml(&sample_toml(3, 2)).unwrap();
    let json = String::from_utf8(plain.canonical_json().unwrap()).unwrap();
    assert!(
        !json.contains("signing_keys")
            && !json.contains("require_hardware")
            && !json.contains("allow_zero_counter"),
        "absent fields are not serialized: {json}"
    );
    let toml = with_signing_keys(&sample_toml(3, 2), 1, &[sk_line(51, "ssh:")]);
    let p = Policy::from_toml(&toml).unwrap();
    assert_eq!(p.custodians[0].signing_keys.len(), 1);
    assert!(
        !p.custodians[0].signing_keys[0].contains("yubikey"),
        "comment dropped"
    );
    let keys = p.signing_keys(Role::Custodian, "c1");
    assert_eq!(keys.len(), 2, "ssh_key first, then the security key");
    assert_eq!(keys[1].algorithm().as_str(), "sk-ssh-ed25519@openssh.com");
    assert_eq!(p.signing_keys(Role::Custodian, "c2").len(), 1);
    let again = Policy::from_canonical_json(&p.canonical_json().unwrap()).unwrap();
    assert_eq!(again, p);

    let mut all = toml.clone();
    for i in 2..=3 {
        all = with_signing_keys(&all, i, &[sk_line(50 + i, "ssh:")]);
    }
    let required =
        format!("{all}\n[require_hardware]\ncustodians = true\nuser_verification = true\n");
    let p = Policy::from_toml(&required).unwrap();
    assert!(p.hardware_required(Role::Custodian));
    assert!(!p.hardware_required(Role::Commander));
    assert!(p.user_verification_required());
}

/// Issue 13: a policy that requires hardware of someone with no security
/// key, an unusable signing key, or one key for two people is refused.
#[test]
fn refuses_bad_signing_keys() {
    let base = with_signing_keys(&sample_toml(3, 2), 1, &[sk_line(51, "ssh:")]);
    let cases = [
        (
            format!("{base}\n[require_hardware]\ncustodians = true\n"),
            "require_hardware.custodians is set but c2, c3 have no security key in signing_keys",
        ),
        (
            format!("{base}\n[require_hardware]\ncommanders = true\n"),
            "require_hardware.commanders is set but ic has no security key",
        ),
        (
            format!("{base}\n[require_hardware]\ncustodians = true\nusers = true\n"),
            "unknown field `users`",
        ),
        (
            with_signing_keys(&sample_toml(3, 2), 1, &["ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC".into()]),
            "custodian c1: signing key \"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC\" is not an OpenSSH public key line",
        ),
        (
            with_signing_keys(&sample_toml(3, 2), 1, &[sk_line(51, "web:example.com")]),
            "custodian c1: security key application \"web:example.com\" does not start with \"ssh:\"",
        ),
        (
            with_signing_keys(&sample_toml(3, 2), 1, &[sk_line(51, "ssh:"), sk_line(51, "ssh:")]),
            "is listed twice",
        ),
        (
            with_signing_keys(&sample_toml(3, 2), 1, &[ssh_line(&key(1))]),
            "is listed twice (or is the ssh_key)",
        ),
        (
            with_signing_keys(&base, 2, &[sk_line(51, "ssh:")]),
            "custodian c1 and custodian c2 list the same security key",
        ),
    ];
    for (toml, want) in cases {
        let e = Policy::from_toml(&toml).unwrap_err().to_string();
        assert!(e.contains(want), "want {want:?} in {e:?}");
    }
}
