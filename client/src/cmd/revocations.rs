//! `breakglass revocations`: the daemon's signed revocation list written for
//! downstream systems, as an OpenSSH KRL (sshd's `RevokedKeys`) and/or as the
//! JSON list token verifiers read. Both formats are `breakglass_formats`'.

use std::path::Path;

use anyhow::{anyhow, bail, Context};

use breakglass_client::api::Client;
use breakglass_formats::keys::AuthorityPublic;
use breakglass_formats::revocation::{RevocationListJson, RevokedItem};
use breakglass_formats::sshcert;
use breakglass_proto::pb;

use crate::cli::Conn;
use crate::cmd::conn::connect;

/// `breakglass revocations [--krl FILE] [--json FILE]`.
pub(crate) async fn run(
    conn: &Conn,
    krl: Option<&Path>,
    json: Option<&Path>,
    include_expired: bool,
) -> anyhow::Result<()> {
    let mut c = connect(conn).await?;
    if krl.is_none() && json.is_none() {
        bail!(
            "say where to write: --krl FILE (OpenSSH RevokedKeys) and/or --json FILE (token ids)"
        );
    }
    let list = c.revocations(include_expired).await?;
    let authority = AuthorityPublic::parse(&c.info().authority_ssh)?;
    if let Some(path) = krl {
        write_krl(path, &authority, &list)?;
    }
    if let Some(path) = json {
        write_json(path, &c, &authority, &list)?;
    }
    Ok(())
}

/// The KRL revoking every listed certificate by serial and by key id.
fn write_krl(
    path: &Path,
    authority: &AuthorityPublic,
    list: &pb::GetRevocationsResponse,
) -> anyhow::Result<()> {
    let serials: Vec<u64> = list
        .revocations
        .iter()
        .map(|r| r.ssh_serial)
        .filter(|s| *s != 0)
        .collect();
    let ids: Vec<String> = list
        .revocations
        .iter()
        .map(|r| r.ssh_key_id.clone())
        .filter(|k| !k.is_empty())
        .collect();
    let bytes = sshcert::krl(
        authority,
        &serials,
        &ids,
        list.generated_at,
        list.generated_at,
    );
    std::fs::write(path, bytes).with_context(|| path.display().to_string())?;
    println!(
        "wrote OpenSSH KRL {} ({} certificates); sshd: RevokedKeys {}",
        path.display(),
        serials.len(),
        path.display()
    );
    Ok(())
}

/// The JSON list (`breakglass-revocations/v2`) for token verifiers: every
/// entry exactly as D signed it, with D's public key and signature, so a
/// verifier can authenticate it offline (`credential verify --revocations`).
fn write_json(
    path: &Path,
    c: &Client,
    authority: &AuthorityPublic,
    list: &pb::GetRevocationsResponse,
) -> anyhow::Result<()> {
    let signature: [u8; 64] = list
        .daemon_signature
        .as_slice()
        .try_into()
        .map_err(|_| anyhow!("the daemon's revocation list signature is not 64 bytes"))?;
    let doc = RevocationListJson::new(
        &c.info().daemon_id,
        list.generated_at,
        c.daemon_key(),
        authority,
        list.revocations
            .iter()
            .map(|r| RevokedItem {
                request_id: r.request_id.clone(),
                ssh_key_id: r.ssh_key_id.clone(),
                ssh_serial: r.ssh_serial,
                revoked_at: r.revoked_at,
                revoked_by: r.revoked_by.clone(),
                reason: r.reason.clone(),
                expires_at: r.expires_at,
            })
            .collect(),
        &signature,
    );
    // What is written must verify as the reader will check it: a bug here
    // would otherwise surface only at a downstream verifier.
    let doc = doc
        .verify(Some(c.daemon_key()))
        .map_err(|e| anyhow!("the list to write does not verify: {e}"))?;
    std::fs::write(path, serde_json::to_vec_pretty(doc.list())?)
        .with_context(|| path.display().to_string())?;
    println!(
        "wrote JSON revocation list {} ({} revoked), signed by daemon key {}",
        path.display(),
        doc.list().revoked.len(),
        hex::encode(c.daemon_key().as_bytes())
    );
    Ok(())
}
