//! The drill's readiness steps: every generated custodian proves her share
//! with an attestation (nothing is unlocked), a live-style drill passes and
//! mints nothing, and at the end the readiness report must say the quorum is
//! ready and show the drill.

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

/// A live-style drill on the temporary daemon: the commander opens a request
/// of kind drill, `threshold` custodians approve it with their shares, and
/// the statement A signs verifies offline against the ceremony's A; the
/// credential fetch is refused (a drill grants nothing).
pub(super) async fn live_drill_step(
    rec: &mut Recorder,
    client: &mut Client,
    cer: &CeremonyOutput,
    custodians: &[Identity],
    commander: &Identity,
    threshold: u8,
) {
    let t = Instant::now();
    let r = async {
        let v = client
            .open_drill(commander, None, "breakglass drill: rehearse the live drill")
            .await
            .map_err(|e| e.to_string())?;
        let mut last = None;
        for (c, (_, path)) in custodians
            .iter()
            .zip(&cer.share_files)
            .take(usize::from(threshold))
        {
            let share = client.read_share_file(c, path).map_err(|e| e.to_string())?;
            let p = client
                .submit(c, None, &v, &share)
                .await
                .map_err(|e| e.to_string())?;
            if p.unlocked {
                return Err("a drill reported a minted credential".to_string());
            }
            last = p.request;
        }
        let last = last.ok_or("no custodian approved the drill")?;
        let st = client.drill_statement(&last).map_err(|e| e.to_string())?;
        st.verify(cer.authority.0.as_bytes(), Some(&st.daemon_id))
            .map_err(|e| e.to_string())?;
        match client.fetch(commander, None, &v.id).await {
            Err(crate::ClientError::Status(s)) if s.code() == tonic::Code::FailedPrecondition => {}
            other => return Err(format!("fetching a drill's credential was not refused: {other:?}")),
        }
        Ok((
            (),
            format!(
                "{} passed: {} rebuilt the key, A signed the statement (verified offline), fetch refused, nothing minted",
                v.id,
                st.approvers.join(", ")
            ),
        ))
    }
    .await;
    rec.step("live drill", t, r);
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
            if r.ready
                && r.proven == all
                && approved == r.threshold as usize
                && !r.last_drill_request_id.is_empty()
            {
                Ok((
                    (),
                    format!(
                        "ready: {} of {all} custodians proven within {}d (threshold {}); {approved} approved; last live drill {} in {}s",
                        r.proven,
                        r.attest_every_seconds / 86_400,
                        r.threshold,
                        r.last_drill_request_id,
                        r.last_drill_seconds_to_quorum
                    ),
                ))
            } else {
                Err(format!(
                    "the report says ready = {}, {} of {all} proven, {approved} approved, last drill {:?} (stale: {})",
                    r.ready,
                    r.proven,
                    r.last_drill_request_id,
                    r.stale.join(", ")
                ))
            }
        });
    rec.step("readiness report", t, r);
}
