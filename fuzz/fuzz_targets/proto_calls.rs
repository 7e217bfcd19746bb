//! gRPC calls into engine types: prost-decodes the input (after a selector byte)
//! as `OpenRequestRequest`, `SubmitShareRequest`, `CancelRequestRequest`,
//! `FetchCredentialRequest` or `RevokeCredentialRequest`, then runs the checks
//! the daemon runs before any state change (`breakglass_fuzz::calls`):
//! signature presence, membership, freshness and signature via `engine::auth`,
//! `Policy::authorize_open`, the SSH key to certify (`sshcert`), request state,
//! `transport::open_share`, `verify_share`, the pure state transition, and the
//! error-to-status mapping. No server is started.
//!
//! Input: `kind (1 byte, modulo 5: open, submit, cancel, fetch, revoke) ‖ protobuf message`.
#![no_main]

use breakglass_fuzz::calls::{run, Kind};
use breakglass_fuzz::fixture::NOW;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&kind, msg)) = data.split_first() {
        run(Kind::from_byte(kind), msg, NOW);
    }
});
