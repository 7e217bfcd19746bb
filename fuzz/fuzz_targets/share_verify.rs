//! Share checks: `engine::share::verify_share` over arbitrary plaintext share
//! bytes, for each fixture custodian (authenticated once through
//! `engine::auth::authenticate_custodian` with a real signature) against that
//! custodian's commitment: length, x = 0, x of another custodian, commitment.
#![no_main]

use breakglass_daemon::engine::share::verify_share;
use breakglass_fuzz::fixture::{world, LINEAGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|plaintext: &[u8]| {
    let w = world();
    for who in &w.custodians {
        let com = &w.commitments[who.id()];
        if let Ok(share) = verify_share(who, com, LINEAGE, plaintext) {
            // Only the custodian's own committed share may pass.
            assert_eq!(share.custodian(), who.id());
            assert_eq!(share.x(), who.x());
            assert_eq!(plaintext.first(), Some(&who.x()));
        }
    }
});
