//! Credentials, as a downstream system or `breakglass credential verify` reads
//! them, all against the fixture authority A at the fixture clock:
//! - `formats::credential::verify` (PASETO v4.public: parse, signature, claims,
//!   nbf/exp) and `formats::sshcert::verify` (OpenSSH user certificate) over the text;
//! - `formats::verify::parse_artifact` (bundle JSON, certificate line, bare token),
//!   `token_from`, and `verify_artifact` without and with a revocation list;
//! - `AuthorityPublic::parse` (PASERK, ssh-ed25519 line, hex) over the
//!   same text: the fixture token and certificate verify only under A;
//! - the JSON revocation list (`RevocationListJson`), applied to the fixture credentials;
//! - a live drill's statement (`formats::drill::DrillStatement`): parsed and
//!   verified against A, with and without the daemon id.
#![no_main]

use breakglass_formats::keys::AuthorityPublic;
use breakglass_formats::revocation::{signed_payload, RevocationListJson};
use breakglass_formats::verify::{parse_artifact, token_from, verify_artifact, Artifact};
use breakglass_formats::{credential, sshcert};
use breakglass_fuzz::fixture::{daemon_key, world, NOW};
use ed25519_dalek::Signer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let w = world();
    if let Ok(st) = breakglass_formats::drill::DrillStatement::parse(text) {
        let a = w.authority.0.to_bytes();
        if st.verify(&a, Some(&st.daemon_id.clone())).is_ok() {
            assert_eq!(st.authority_public_key, hex::encode(a));
            assert_eq!(st.quorum_at - st.opened_at, st.seconds_to_quorum);
        }
        let _ = st.verify(&[7u8; 32], None);
    }
    if let Ok(v) = credential::verify(&w.authority, text, NOW) {
        assert!(v.not_before <= NOW && NOW < v.expires_at);
    }
    if let Ok(c) = sshcert::verify(&w.authority, text, NOW) {
        assert!(c.valid_after <= NOW && NOW < c.valid_before);
    }
    let _ = token_from(text);
    if let Ok(artifact) = parse_artifact(text) {
        let _ = verify_artifact(&w.authority, &artifact, NOW, None);
        let d = daemon_key();
        let sig = d
            .sign(&signed_payload("fuzz-daemon", NOW, &w.authority, &[]))
            .to_bytes();
        let empty = RevocationListJson::new(
            "fuzz-daemon",
            NOW,
            &d.verifying_key(),
            &w.authority,
            Vec::new(),
            &sig,
        )
        .verify(Some(&d.verifying_key()))
        .expect("a list signed by the fixture D verifies");
        let _ = verify_artifact(&w.authority, &artifact, NOW, Some(&empty));
    }
    if let Ok(a) = AuthorityPublic::parse(text) {
        let token = credential::verify(&a, &w.token, NOW).is_ok();
        let cert = sshcert::verify(&a, &w.certificate, NOW).is_ok();
        assert_eq!(token, a == w.authority, "token verified under another key");
        assert_eq!(
            cert,
            a == w.authority,
            "certificate verified under another key"
        );
    }
    if let Some(list) = serde_json::from_str::<RevocationListJson>(text)
        .ok()
        .and_then(|l| l.verify(None).ok())
    {
        for artifact in [
            Artifact::Token(w.token.clone()),
            Artifact::Certificate(w.certificate.clone()),
        ] {
            let _ = verify_artifact(&w.authority, &artifact, NOW, Some(&list));
        }
    }
});
