//! Share transport: `breakglass_proto::transport::open_share` with the fixture's
//! ephemeral secret E_req over arbitrary sealed bytes (length and version check,
//! low-order sender key, XChaCha20-Poly1305 open), bound to the collecting
//! request's digest and id and to custodian `c2`. A share that opens is then
//! run through `engine::share::verify_share`, as the daemon does.
#![no_main]

use breakglass_daemon::engine::share::verify_share;
use breakglass_fuzz::fixture::{world, LINEAGE};
use breakglass_proto::transport::{open_share, SHARE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|sealed: &[u8]| {
    let w = world();
    let r = &w.collecting;
    if let Ok(plain) = open_share(&w.ephemeral, &r.digest, &r.id, "c2", sealed) {
        assert_eq!(
            plain.len(),
            SHARE_LEN,
            "an opened share has the sealed length"
        );
        let who = &w.custodians[1];
        let _ = verify_share(who, &w.commitments["c2"], LINEAGE, &plain);
    }
});
