//! Policy changes and rekeys (DESIGN.md "Epochs"), as a custodian, a
//! commander or a new custodian makes them.
//!
//! Nothing the daemon says about a change is shown or signed before it is
//! checked: the change request's digest is recomputed (it binds the epoch and
//! both policy digests), both policies' canonical JSON must hash to those
//! digests, D's signature over the change view must verify, and the summary a
//! custodian approves from is recomputed here from the two policies
//! (`formats::change`), never taken from the daemon.

use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};

use breakglass_formats::change::{summarize, Summary};
use breakglass_formats::envelope;
use breakglass_formats::share_file::ShareFile;
use breakglass_proto::{pb, signing, transport};

use super::{unix_now, Client, Role};
use crate::error::{ClientError, Result};
use crate::identity::Identity;

/// A change view that passed every check.
#[derive(Debug, Clone)]
pub struct Change {
    /// The view as received.
    pub view: pb::ChangeView,
    /// What it changes, recomputed from the two policies.
    pub summary: Summary,
    /// The change request (checked with the view).
    request: pb::RequestView,
}

impl Change {
    /// The change request.
    pub fn request(&self) -> &pb::RequestView {
        &self.request
    }

    /// The change id.
    pub fn id(&self) -> &str {
        &self.request.id
    }

    /// The pending epoch, once dealt.
    pub fn pending(&self) -> Option<&pb::PendingEpoch> {
        self.view.pending.as_ref()
    }
}

/// A new custodian's share file of a pending epoch, checked.
pub struct NewShare {
    /// The share file (decrypted).
    pub file: ShareFile,
    /// The file as the daemon keeps it (age-encrypted to her), to save.
    pub encrypted: Vec<u8>,
    /// The change, after the fetch.
    pub change: Change,
}

fn d32(what: &str, b: &[u8]) -> Result<[u8; 32]> {
    b.try_into()
        .map_err(|_| ClientError::Untrusted(format!("{what} is not 32 bytes")))
}

fn untrusted(id: &str, why: &str) -> ClientError {
    ClientError::Untrusted(format!("change {id}: {why}"))
}

/// The custodians (id, ssh key) a policy's canonical JSON names.
fn custodians_of(policy_json: &str) -> Result<Vec<(String, String)>> {
    let v: serde_json::Value = serde_json::from_str(policy_json)
        .map_err(|e| ClientError::Untrusted(format!("the policy is not JSON: {e}")))?;
    Ok(v.get("custodians")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| {
                    Some((
                        c.get("id")?.as_str()?.to_string(),
                        c.get("ssh_key")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default())
}

impl Client {
    /// Fetches the daemon's description again (after a change committed, its
    /// epoch, custodians and policy are new).
    pub async fn refresh(&mut self) -> Result<()> {
        let info = self.rpc.get_info(pb::GetInfoRequest {}).await?.into_inner();
        if info.daemon_id != self.info.daemon_id
            || info.daemon_public_key.as_slice() != self.daemon_key.as_bytes()
            || info.authority_public_key != self.info.authority_public_key
        {
            return Err(ClientError::Untrusted(
                "the daemon's id, its key D or its authority key changed; reconnect on purpose"
                    .into(),
            ));
        }
        self.info = info;
        Ok(())
    }

    /// Checks a change view: the request view with its change digest, both
    /// policies against their digests, D's signature over the whole; and
    /// recomputes the summary.
    pub fn check_change(&self, v: pb::ChangeView) -> Result<Change> {
        let r = v
            .request
            .clone()
            .ok_or_else(|| ClientError::Untrusted("a change view without its request".into()))?;
        let id = r.id.clone();
        if r.kind != pb::RequestKind::Change as i32 {
            return Err(untrusted(
                &id,
                "the daemon sent a request that is not a change",
            ));
        }
        self.check_view_bound(&r, Some(&v))?;
        let cur = d32("current policy digest", &v.current_policy_digest)?;
        let new = d32("new policy digest", &v.new_policy_digest)?;
        if Sha256::digest(v.current_policy_json.as_bytes()).as_slice() != cur {
            return Err(untrusted(
                &id,
                "the current policy it shows does not hash to its digest",
            ));
        }
        if Sha256::digest(v.new_policy_json.as_bytes()).as_slice() != new {
            return Err(untrusted(
                &id,
                "the proposed policy it shows does not hash to its digest",
            ));
        }
        let status = v.pending.as_ref().map(signing::PendingStatus::of);
        let digest = d32("change digest", &r.digest)?;
        let payload = signing::change_view(
            &digest,
            v.current_policy_json.as_bytes(),
            v.new_policy_json.as_bytes(),
            status.as_ref(),
        );
        let sig = Signature::from_slice(&v.daemon_signature)
            .map_err(|_| untrusted(&id, "D's signature is malformed"))?;
        self.daemon_key
            .verify_strict(&payload, &sig)
            .map_err(|_| untrusted(&id, "not signed by this daemon's key"))?;
        let summary = summarize(
            v.current_policy_json.as_bytes(),
            v.new_policy_json.as_bytes(),
        )
        .map_err(|e| untrusted(&id, &e.to_string()))?;
        if summary.rekey != v.rekey {
            return Err(untrusted(
                &id,
                "the daemon and this client disagree on whether it needs new shares",
            ));
        }
        Ok(Change {
            view: v,
            summary,
            request: r,
        })
    }

    /// [`Client::check_change`] for an answer about `id`: a signed view of
    /// another change (an older one of the same epoch number) is refused.
    fn check_change_of(&self, id: &str, v: pb::ChangeView) -> Result<Change> {
        let c = self.check_change(v)?;
        if c.id() != id {
            return Err(untrusted(
                id,
                &format!("the daemon answered with change {}", c.id()),
            ));
        }
        Ok(c)
    }

    /// Validates a policy file on the daemon (as `init` would) and checks
    /// what comes back: the current policy is the one `GetInfo` published and
    /// both JSON documents hash to their digests. Returns the response and the
    /// summary recomputed here.
    pub async fn check_policy(&mut self, toml: &str) -> Result<(pb::CheckPolicyResponse, Summary)> {
        let c = self
            .rpc
            .check_policy(pb::CheckPolicyRequest {
                policy: toml.to_string(),
            })
            .await?
            .into_inner();
        let new = d32("policy digest", &c.policy_digest)?;
        let cur = d32("current policy digest", &c.current_policy_digest)?;
        if Sha256::digest(c.policy_json.as_bytes()).as_slice() != new
            || Sha256::digest(c.current_policy_json.as_bytes()).as_slice() != cur
        {
            return Err(ClientError::Untrusted(
                "the daemon's canonical policy does not hash to the digest it gave".into(),
            ));
        }
        if hex::encode(cur) != self.info.policy_digest || c.epoch != self.info.epoch {
            return Err(ClientError::Untrusted(format!(
                "the daemon compared the proposal with policy {} of epoch {}, but it publishes policy {} of epoch {}; run the command again",
                hex::encode(&cur[..8]),
                c.epoch,
                &self.info.policy_digest.get(..16).unwrap_or(""),
                self.info.epoch
            )));
        }
        let summary = summarize(c.current_policy_json.as_bytes(), c.policy_json.as_bytes())
            .map_err(|e| ClientError::Untrusted(e.to_string()))?;
        Ok((c, summary))
    }

    /// Proposes the policy file `toml` as a custodian or commander `me`.
    pub async fn propose(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        toml: &str,
        reason: &str,
    ) -> Result<Change> {
        let (checked, _) = self.check_policy(toml).await?;
        let id = self
            .whoami(me, Role::Custodian, as_id)
            .or_else(|_| self.whoami(me, Role::Commander, as_id))?;
        let cur = d32("current policy digest", &checked.current_policy_digest)?;
        let new = d32("policy digest", &checked.policy_digest)?;
        let nonce = signing::new_nonce(&mut rand_core::OsRng);
        let at = unix_now();
        let payload = signing::propose_change(
            &self.info.daemon_id,
            &id,
            checked.epoch,
            &cur,
            &new,
            reason,
            &nonce,
            at,
        );
        let expected = signing::change_id(&payload);
        let v = self
            .rpc
            .propose_change(pb::ProposeChangeRequest {
                policy: toml.to_string(),
                reason: reason.to_string(),
                nonce: nonce.to_vec(),
                signature: Some(self.signature(me, &id, &payload, at)?),
            })
            .await?
            .into_inner();
        let c = self.check_change(v)?;
        if c.id() != expected || c.view.new_policy_digest != new {
            return Err(untrusted(
                c.id(),
                &format!("the daemon opened another change than the one signed ({expected})"),
            ));
        }
        Ok(c)
    }

    /// One change, checked.
    pub async fn get_change(&mut self, id: &str) -> Result<Change> {
        let v = self
            .rpc
            .get_change(pb::GetChangeRequest { id: id.to_string() })
            .await?
            .into_inner();
        self.check_change_of(id, v)
    }

    /// Approves `change` with custodian `me`'s current share.
    pub async fn approve_change(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        change: &Change,
        share: &ShareFile,
    ) -> Result<(pb::ApproveChangeResponse, Change)> {
        let id = self.whoami(
            me,
            Role::Custodian,
            as_id.or(Some(share.custodian_id.as_str())),
        )?;
        let r = change.request();
        let eph = d32("ephemeral key", &r.ephemeral_public_key)?;
        let digest = d32("change digest", &r.digest)?;
        let new = d32("new policy digest", &change.view.new_policy_digest)?;
        let bytes = share.share_bytes().map_err(|e| ClientError::ShareFile {
            path: "(share)".into(),
            why: e.to_string(),
        })?;
        let sealed = transport::seal_share(&eph, &digest, &r.id, &id, &bytes, rand_core::OsRng)
            .map_err(|e| ClientError::Other(e.to_string()))?;
        drop(bytes);
        let at = unix_now();
        let payload = signing::approve_change(
            &self.info.daemon_id,
            &r.id,
            &digest,
            share.epoch(),
            &new,
            &id,
            &sealed,
            at,
        );
        let out = self
            .rpc
            .approve_change(pb::ApproveChangeRequest {
                change_id: r.id.clone(),
                sealed_share: sealed,
                epoch: share.epoch(),
                new_policy_digest: new.to_vec(),
                signature: Some(self.signature(me, &id, &payload, at)?),
            })
            .await?
            .into_inner();
        let after = out
            .change
            .clone()
            .ok_or_else(|| untrusted(&r.id, "the answer has no change view"))?;
        let after = self.check_change_of(&r.id, after)?;
        Ok((out, after))
    }

    /// Cancels a change as its proposer or a custodian.
    pub async fn cancel_change(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        change_id: &str,
        reason: &str,
    ) -> Result<Change> {
        let c = self.get_change(change_id).await?;
        let id = self
            .whoami(me, Role::Custodian, as_id)
            .or_else(|_| self.whoami(me, Role::Commander, as_id))?;
        let digest = d32("change digest", &c.request().digest)?;
        let at = unix_now();
        let payload =
            signing::cancel_change(&self.info.daemon_id, change_id, &digest, &id, reason, at);
        let v = self
            .rpc
            .cancel_change(pb::CancelChangeRequest {
                change_id: change_id.to_string(),
                reason: reason.to_string(),
                signature: Some(self.signature(me, &id, &payload, at)?),
            })
            .await?
            .into_inner();
        self.check_change_of(change_id, v)
    }

    /// The id `me` has among the custodians of `change`'s proposed policy.
    fn new_custodian(&self, me: &Identity, change: &Change, as_id: Option<&str>) -> Result<String> {
        let mine = me.ssh_public();
        let members = custodians_of(&change.view.new_policy_json)?;
        let key_of = |id: &str| {
            members
                .iter()
                .find(|(m, _)| m == id)
                .map(|(_, k)| k.clone())
        };
        let found = match as_id {
            Some(id) => key_of(id).map(|_| id.to_string()),
            None => members
                .iter()
                .find(|(_, k)| *k == mine)
                .map(|(id, _)| id.clone()),
        };
        found.ok_or_else(|| {
            ClientError::NotRegistered(format!(
                "the key {} is not a custodian of the policy change {} proposes; use the key that policy names, or --as ID",
                me.path().display(),
                change.id()
            ))
        })
    }

    fn pending_of(change: &Change) -> Result<&pb::PendingEpoch> {
        change.pending().ok_or_else(|| {
            ClientError::Other(format!(
                "change {} has dealt no new shares (it is {}); `breakglass policy status {}` shows where it stands",
                change.id(),
                super::state_name(change.request().state),
                change.id()
            ))
        })
    }

    /// Fetches and checks new custodian `me`'s share file of the epoch
    /// `change_id` dealt: for this daemon, ceremony and epoch, made for her,
    /// its share matching the commitment D signed in the change view, and the
    /// file itself signed by D.
    pub async fn fetch_new_share(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        change_id: &str,
    ) -> Result<NewShare> {
        let before = self.get_change(change_id).await?;
        let id = self.new_custodian(me, &before, as_id)?;
        let epoch = Self::pending_of(&before)?.epoch;
        let at = unix_now();
        let payload = signing::fetch_new_share(&self.info.daemon_id, change_id, epoch, &id, at);
        let out = self
            .rpc
            .fetch_new_share(pb::FetchNewShareRequest {
                change_id: change_id.to_string(),
                epoch,
                signature: Some(self.signature(me, &id, &payload, at)?),
            })
            .await?
            .into_inner();
        let change = self.check_change_of(
            change_id,
            out.change
                .ok_or_else(|| untrusted(change_id, "the answer has no change view"))?,
        )?;
        let plain =
            envelope::decrypt(me.age(), &out.share_file).map_err(|why| ClientError::ShareFile {
                path: "(fetched)".into(),
                why: format!("cannot decrypt with {}: {why}", me.path().display()),
            })?;
        let file = ShareFile::parse(&plain).map_err(|e| ClientError::ShareFile {
            path: "(fetched)".into(),
            why: e.to_string(),
        })?;
        drop(plain);
        self.check_new_share(&change, &id, &file)?;
        Ok(NewShare {
            file,
            encrypted: out.share_file,
            change,
        })
    }

    /// Checks a share file of `change`'s pending epoch for custodian `id`.
    pub fn check_new_share(&self, change: &Change, id: &str, file: &ShareFile) -> Result<[u8; 32]> {
        let p = Self::pending_of(change)?;
        let bad = |why: String| ClientError::ShareFile {
            path: "(new share)".into(),
            why,
        };
        if file.daemon_id != self.info.daemon_id
            || file.ceremony_id != self.info.ceremony_id
            || file.custodian_id != id
            || file.epoch() != p.epoch
        {
            return Err(bad(format!(
                "it is custodian {}'s share of daemon {} ceremony {} epoch {}, not {id}'s share of epoch {} of this daemon",
                file.custodian_id,
                file.daemon_id,
                file.ceremony_id,
                file.epoch(),
                p.epoch
            )));
        }
        let dealt = p
            .shares
            .iter()
            .find(|s| s.custodian_id == id)
            .ok_or_else(|| bad(format!("epoch {} dealt no share to {id}", p.epoch)))?;
        let commitment = d32("commitment", &dealt.commitment)?;
        let recomputed = file
            .recomputed_commitment()
            .map_err(|e| bad(e.to_string()))?;
        if recomputed != commitment
            || file.x().map_err(|e| bad(e.to_string()))? != u8::try_from(dealt.x).unwrap_or(0)
        {
            return Err(bad(format!(
                "its share does not match the commitment D signed for {id} in epoch {}: do not use it",
                p.epoch
            )));
        }
        file.check_origin(Some(&self.daemon_key.to_bytes()))
            .map_err(|e| bad(e.to_string()))?;
        Ok(commitment)
    }

    /// Confirms new custodian `me`'s share of the epoch `change_id` dealt.
    pub async fn confirm_new_share(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        change_id: &str,
        file: &ShareFile,
    ) -> Result<(pb::ConfirmNewShareResponse, Change)> {
        let before = self.get_change(change_id).await?;
        let id = self.new_custodian(me, &before, as_id.or(Some(file.custodian_id.as_str())))?;
        let commitment = self.check_new_share(&before, &id, file)?;
        let p = Self::pending_of(&before)?;
        if p.state != pb::PendingState::Confirming as i32 {
            let state = match pb::PendingState::try_from(p.state) {
                Ok(pb::PendingState::Committed) => "committed: your share file works as it is",
                Ok(pb::PendingState::Cancelled) => "cancelled",
                Ok(pb::PendingState::Expired) => "expired",
                _ => "not waiting for confirmations",
            };
            return Err(ClientError::Other(format!(
                "epoch {} of change {change_id} is {state}; there is nothing to confirm",
                p.epoch
            )));
        }
        let eph = d32(
            "the pending epoch's key (is it still waiting for confirmations?)",
            &p.ephemeral_public_key,
        )?;
        let digest = d32("change digest", &before.request().digest)?;
        let bytes = file.share_bytes().map_err(|e| ClientError::ShareFile {
            path: "(new share)".into(),
            why: e.to_string(),
        })?;
        let sealed = transport::seal_share(&eph, &digest, change_id, &id, &bytes, rand_core::OsRng)
            .map_err(|e| ClientError::Other(e.to_string()))?;
        drop(bytes);
        let at = unix_now();
        let payload = signing::confirm_new_share(
            &self.info.daemon_id,
            change_id,
            p.epoch,
            &eph,
            &id,
            &commitment,
            &sealed,
            at,
        );
        let out = self
            .rpc
            .confirm_new_share(pb::ConfirmNewShareRequest {
                change_id: change_id.to_string(),
                epoch: p.epoch,
                commitment: commitment.to_vec(),
                sealed_share: sealed,
                signature: Some(self.signature(me, &id, &payload, at)?),
                ephemeral_public_key: eph.to_vec(),
            })
            .await?
            .into_inner();
        let after = self.check_change_of(
            change_id,
            out.change
                .clone()
                .ok_or_else(|| untrusted(change_id, "the answer has no change view"))?,
        )?;
        if out.committed {
            self.refresh().await?;
        }
        Ok((out, after))
    }
}
