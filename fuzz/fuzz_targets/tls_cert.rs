//! TLS certificates: `server::decode::cert_identity` (the subject common name of
//! a mutual-TLS client certificate, parsed from DER with x509-parser, which the
//! daemon binds to the signer id) and `server::tls::fingerprint` (PEM chain, the
//! pin clients use) over arbitrary bytes.
#![no_main]

use breakglass_daemon::cert_identity;
use breakglass_daemon::fingerprint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cert_identity(data);
    if let Ok(fp) = fingerprint(data) {
        assert!(fp.starts_with("sha256:") && fp.len() == 7 + 64, "{fp}");
    }
});
