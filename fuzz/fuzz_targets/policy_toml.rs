//! Policy files: `engine::policy::Policy::from_toml` over arbitrary UTF-8 (TOML
//! syntax, durations, ids, ssh-ed25519 keys, every validation rule). A policy
//! that parses must survive its canonical JSON round trip
//! (`Policy::from_canonical_json`) unchanged, with the same digest, because the
//! ceremony stores that JSON and the daemon reloads it at every start.
#![no_main]

use breakglass_daemon::engine::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = Policy::from_toml(text) else {
        return;
    };
    let again = Policy::from_canonical_json(
        &p.canonical_json()
            .unwrap_or_else(|e| panic!("a valid policy does not encode: {e}")),
    )
    .unwrap_or_else(|e| panic!("a policy from TOML does not reload from its JSON: {e}"));
    assert_eq!(again, p);
    assert_eq!(again.digest().ok(), p.digest().ok());
    for c in &p.commanders {
        for s in &p.scopes {
            let _ = p.authorize_open(&c.member.id, &s.name, p.ttl_cap(s));
        }
    }
});
