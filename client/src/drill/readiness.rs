//! The drill's readiness steps: every generated custodian proves her share
//! with an attestation (nothing is unlocked), and at the end the readiness
//! report must say the quorum is ready.

use std::time::Instant;

use breakglass_daemon::CeremonyOutput;

use super::Recorder;
use crate::api::Client;
use crate::identity::Identity;

/// Attests every custodian's share; false if one failed (the drill stops).
pub(super) async fn attest_all(
    rec: &mut Recorder,
    client: &mut Client,
    cer: &CeremonyOutput,
    custodians: &[Identity],
) -> bool {
    let t = Instant::now();
    let r = async {
        let mut who = Vec::new();
        for (c, (id, path)) in custodians.iter().zip(&cer.share_files) {
            let share = client.read_share_file(c, path).map_err(|e| e.to_string())?;
            let a = client
                .attest(c, None, &share)
                .await
                .map_err(|e| format!("{id}: {e}"))?;
            who.push(a.custodian_id);
        }
        Ok((
            (),
            format!("{} proved their shares; nothing unlocked", who.join(", ")),
        ))
    }
    .await;
    rec.step(&format!("attest {} custodians", custodians.len()), t, r)
        .is_some()
}

/// Reads the readiness report over the API: every custodian proven, ready.
pub(super) async fn report_step(rec: &mut Recorder, client: &mut Client) {
    let t = Instant::now();
    let r = client
        .readiness()
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| {
            let all = u32::try_from(r.custodians.len()).unwrap_or(u32::MAX);
            let approved = r.custodians.iter().filter(|c| c.last_approved_at != 0).count();
            if r.ready && r.proven == all && approved == r.threshold as usize {
                Ok((
                    (),
                    format!(
                        "ready: {} of {all} custodians proven within {}d (threshold {}); {approved} approved",
                        r.proven,
                        r.attest_every_seconds / 86_400,
                        r.threshold
                    ),
                ))
            } else {
                Err(format!(
                    "the report says ready = {}, {} of {all} proven, {approved} approved (stale: {})",
                    r.ready,
                    r.proven,
                    r.stale.join(", ")
                ))
            }
        });
    rec.step("readiness report", t, r);
}
