//! The drill's rekey phase (DESIGN.md "Epochs"): the commander proposes a
//! policy that removes the last custodian, adds a new one and changes the
//! threshold; the first `threshold` custodians approve with their shares;
//! every custodian of the new policy fetches, checks and confirms her new
//! share, and the last confirmation commits epoch 2. Then the removed
//! custodian's share and an old share are refused, the new shares unlock, and
//! the new credential verifies against the authority key the ceremony made:
//! A did not change.

use std::time::Instant;

use breakglass_daemon::CeremonyOutput;
use breakglass_formats::share_file::ShareFile;
use breakglass_proto::pb;

use super::{policy_toml_of, Recorder};
use crate::api::{unix_now, Client};
use crate::identity::Identity;
use breakglass_formats::verify::verify_token;

/// The threshold the drill changes to: one more, or one fewer when it is all of them.
fn next_threshold(n: usize, k: u8) -> u8 {
    if usize::from(k) < n {
        k + 1
    } else {
        k.saturating_sub(1).max(1)
    }
}

/// Runs the phase; every step is recorded, and the first that fails stops it.
pub(super) async fn rekey_phase(
    rec: &mut Recorder,
    client: &mut Client,
    cer: &CeremonyOutput,
    custodians: &[Identity],
    commander: &Identity,
    k: u8,
) {
    let n = custodians.len();
    if n < 2 {
        return;
    }
    let joining = Identity::generate();
    let removed = n - 1;
    // The custodians of epoch 2: all but the last, and the new one.
    let mut members: Vec<(String, &Identity)> = custodians
        .iter()
        .enumerate()
        .take(removed)
        .map(|(i, c)| (format!("custodian-{}", i + 1), c))
        .collect();
    members.push((format!("custodian-{}", n + 1), &joining));
    let k2 = next_threshold(members.len(), k);
    let proposed = policy_toml_of(&members, commander, k2);

    let t = Instant::now();
    let r = client
        .propose(
            commander,
            None,
            &proposed,
            "breakglass drill: rehearse a change of custodians",
        )
        .await
        .map_err(|e| e.to_string())
        .map(|c| {
            let d = format!("{}: {}", c.id(), c.summary.lines().join("; "));
            (c, d)
        });
    let Some(change) = rec.step("rekey: propose", t, r) else {
        return;
    };

    let t = Instant::now();
    let r = async {
        let mut last = None;
        for (i, c) in custodians.iter().take(usize::from(k)).enumerate() {
            let path = &cer.share_files.get(i).ok_or("missing share file")?.1;
            let share = client.read_share_file(c, path).map_err(|e| e.to_string())?;
            let (_, after) = client
                .approve_change(c, None, &change, &share)
                .await
                .map_err(|e| e.to_string())?;
            last = Some(after);
        }
        let after = last.ok_or("no approval")?;
        let p = after
            .pending()
            .ok_or_else(|| format!("quorum reached but no epoch was dealt ({})", after.request().close_reason))?
            .clone();
        Ok::<_, String>((
            p.clone(),
            format!(
                "{k} custodians approved with their epoch 1 shares; epoch {} dealt: {k2} of {}, commits when {} confirm",
                p.epoch,
                members.len(),
                p.need
            ),
        ))
    }
    .await;
    let Some(pending) = rec.step("rekey: quorum deals epoch 2", t, r) else {
        return;
    };

    let t = Instant::now();
    let r = async {
        let mut files: Vec<ShareFile> = Vec::new();
        let mut committed = false;
        for (id, who) in &members {
            let got = client
                .fetch_new_share(who, None, change.id())
                .await
                .map_err(|e| format!("{id} fetch: {e}"))?;
            let (out, _) = client
                .confirm_new_share(who, None, change.id(), &got.file)
                .await
                .map_err(|e| format!("{id} confirm: {e}"))?;
            committed = out.committed;
            files.push(got.file);
        }
        if !committed || client.info().epoch != pending.epoch {
            return Err(format!(
                "all {} confirmed but the daemon is at epoch {}",
                members.len(),
                client.info().epoch
            ));
        }
        Ok((
            files,
            format!(
                "{} new custodians fetched, checked and confirmed their shares; epoch {} committed",
                members.len(),
                pending.epoch
            ),
        ))
    }
    .await;
    let Some(files) = rec.step("rekey: confirm new shares", t, r) else {
        return;
    };

    let t = Instant::now();
    let r = async {
        let v = open(client, commander).await?;
        let gone = custodians.get(removed).ok_or("no removed custodian")?;
        let old = &cer.share_files.get(removed).ok_or("missing share file")?.1;
        let old = crate::api::open_share_file(gone, old).map_err(|e| e.to_string())?;
        let refused_removed = match client.submit(gone, Some(&old.custodian_id), &v, &old).await {
            Err(crate::ClientError::Status(s)) if s.code() == tonic::Code::PermissionDenied => s,
            other => return Err(format!("the removed custodian's share: {other:?}")),
        };
        let stays = &cer.share_files.first().ok_or("missing share file")?.1;
        let stays = client
            .read_share_file(&custodians[0], stays)
            .map_err(|e| e.to_string())?;
        match client.submit(&custodians[0], None, &v, &stays).await {
            Err(crate::ClientError::Status(s))
                if s.code() == tonic::Code::FailedPrecondition
                    && s.message().contains("your share is from epoch 1") =>
            {
                Ok((
                    v,
                    format!(
                        "removed custodian refused ({}); an epoch 1 share refused ({})",
                        refused_removed.message(),
                        s.message()
                    ),
                ))
            }
            other => Err(format!("an epoch 1 share after the commit: {other:?}")),
        }
    }
    .await;
    let Some(view) = rec.step("rekey: old shares refused", t, r) else {
        return;
    };

    let t = Instant::now();
    let r = async {
        for ((_, who), file) in members.iter().zip(&files).take(usize::from(k2)) {
            client
                .submit(who, None, &view, file)
                .await
                .map_err(|e| e.to_string())?;
        }
        let bundle = client
            .fetch(commander, None, &view.id)
            .await
            .map_err(|e| e.to_string())?;
        let token = bundle.paseto.unwrap_or_default();
        let v = verify_token(&cer.authority, &token, unix_now()).map_err(|e| e.to_string())?;
        if v.request_id != view.id || client.info().authority_public_key != cer.authority.0.as_bytes() {
            return Err("the new credential is not for this request, or A changed".to_string());
        }
        Ok::<_, String>((
            (),
            format!(
                "{k2} epoch {} shares unlocked {}; the token verifies against the ceremony's authority {} (A unchanged)",
                pending.epoch,
                view.id,
                cer.authority.paserk()
            ),
        ))
    }
    .await;
    rec.step("rekey: new shares unlock, same A", t, r);
}

async fn open(client: &mut Client, commander: &Identity) -> Result<pb::RequestView, String> {
    client
        .open(
            commander,
            None,
            "drill",
            "breakglass drill: unlock with the new epoch",
            600,
            &commander.ssh_public(),
        )
        .await
        .map_err(|e| e.to_string())
}
