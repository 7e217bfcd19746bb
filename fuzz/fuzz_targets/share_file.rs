//! Share files and envelopes, as a custodian's CLI reads them:
//! `share_file::ShareFile::parse` (and `share_bytes`, and the origin check of
//! `share check --offline`) over the raw input,
//! and `envelope::decrypt` (age, armored or binary) with a fixed
//! ssh-ed25519 identity (custodian `c1`'s key), whose plaintext is then parsed
//! as a share file and as a credential bundle, as `client::api` does.
#![no_main]

use std::sync::OnceLock;

use breakglass_formats::credential::CredentialBundle;
use breakglass_formats::envelope::decrypt;
use breakglass_formats::share_file::ShareFile;
use breakglass_fuzz::fixture::{signing_key, ssh_private_pem};
use breakglass_proto::transport::SHARE_LEN;
use libfuzzer_sys::fuzz_target;

fn identity() -> &'static age::ssh::Identity {
    static ID: OnceLock<age::ssh::Identity> = OnceLock::new();
    ID.get_or_init(|| {
        let pem = ssh_private_pem(&signing_key(1));
        age::ssh::Identity::from_buffer(pem.as_bytes(), None).expect("fixture age identity")
    })
}

fn share_file(plaintext: &[u8]) {
    if let Ok(f) = ShareFile::parse(plaintext) {
        if let Ok(share) = f.share_bytes() {
            assert_eq!(share.len(), SHARE_LEN);
        }
        // Whatever the origin fields hold, the check answers and never panics.
        let _ = f.check_origin(None);
        let _ = f.check_origin(Some(&[7u8; 32]));
    }
}

fuzz_target!(|data: &[u8]| {
    share_file(data);
    if let Ok(plain) = decrypt(identity(), data) {
        share_file(&plain);
        let _ = serde_json::from_slice::<CredentialBundle>(&plain);
    }
});
