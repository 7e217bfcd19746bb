//! gRPC handlers of policy changes and rekeys (DESIGN.md "Epochs"): decode,
//! call the [`Daemon`], encode; and the change view D signs.

use tonic::{Request as GrpcRequest, Response, Status};

use breakglass_proto::{pb, signing};

use super::decode::sig;
use super::grpc::BreakGlassService;
use super::view::view;
use crate::engine::rekey::PendingState;
use crate::error::{Error, Result};
use crate::ops::{ChangeState, ConfirmCall, Daemon, ProposeCall, SubmitCall};

fn pending_code(s: PendingState) -> i32 {
    match s {
        PendingState::Confirming => pb::PendingState::Confirming as i32,
        PendingState::Committed => pb::PendingState::Committed as i32,
        PendingState::Cancelled => pb::PendingState::Cancelled as i32,
        PendingState::Expired => pb::PendingState::Expired as i32,
    }
}

/// A change as the wire's `ChangeView`, signed by D.
pub fn change_view(d: &Daemon, c: &ChangeState) -> Result<pb::ChangeView> {
    let r = &c.request;
    let change = r
        .change
        .as_ref()
        .ok_or_else(|| Error::Internal(format!("request `{}` is not a change", r.id)))?;
    let current_json = change.current_policy.canonical_json()?;
    let new_json = change.new_policy.canonical_json()?;
    let pending = c.pending.as_ref().map(|p| {
        let progress = p.progress();
        pb::PendingEpoch {
            epoch: p.number,
            state: pending_code(p.state),
            need: u32::try_from(progress.need).unwrap_or(u32::MAX),
            confirmed: u32::try_from(progress.confirmed).unwrap_or(u32::MAX),
            dealt_at: p.dealt_at,
            deadline: p.deadline,
            closed_at: p.closed_at,
            close_reason: p.close_reason.clone(),
            ephemeral_public_key: c.ephemeral_public.map(|k| k.to_vec()).unwrap_or_default(),
            // In the new policy's order (her x is her place).
            shares: p
                .policy
                .custodians
                .iter()
                .filter_map(|m| {
                    let s = p.shares.get(&m.id)?;
                    Some(pb::NewCustodianShare {
                        custodian_id: m.id.clone(),
                        x: u32::from(s.commitment.x),
                        commitment: s.commitment.hash.to_vec(),
                        fetched_at: s.fetched_at.unwrap_or(0),
                        confirmed_at: s.confirmed_at.unwrap_or(0),
                        file_available: s.file.is_some(),
                    })
                })
                .collect(),
        }
    });
    let status = pending.as_ref().map(signing::PendingStatus::of);
    let daemon_signature = d
        .sign_change_view(&r.digest, &current_json, &new_json, status.as_ref())
        .to_vec();
    Ok(pb::ChangeView {
        request: Some(view(d, r)),
        epoch: change.epoch,
        current_policy_digest: change.current_policy_digest.to_vec(),
        new_policy_digest: change.new_policy_digest.to_vec(),
        current_policy_json: String::from_utf8_lossy(&current_json).into_owned(),
        new_policy_json: String::from_utf8_lossy(&new_json).into_owned(),
        summary: change.summary.lines(),
        rekey: change.rekey(),
        pending,
        daemon_signature,
    })
}

fn digest32(field: &'static str, b: &[u8]) -> Result<[u8; 32]> {
    b.try_into().map_err(|_| {
        Error::invalid(
            field,
            format!("is {} bytes; a SHA-256 digest is 32 bytes", b.len()),
        )
    })
}

impl BreakGlassService {
    pub(super) async fn check_policy_call(
        &self,
        req: GrpcRequest<pb::CheckPolicyRequest>,
    ) -> Result<Response<pb::CheckPolicyResponse>, Status> {
        let log = self.log("CheckPolicy", &req, None, None);
        let out = async {
            self.admit_read(&req)?;
            let text = req.into_inner().policy;
            let c = self.run(move |d| d.check_policy(&text)).await?;
            Ok(Response::new(pb::CheckPolicyResponse {
                policy_json: String::from_utf8_lossy(&c.json).into_owned(),
                policy_digest: c.digest.to_vec(),
                epoch: c.epoch.number,
                current_policy_json: String::from_utf8_lossy(&c.current_json).into_owned(),
                current_policy_digest: c.epoch.policy_digest.to_vec(),
                summary: c.summary.lines(),
                rekey: c.summary.rekey,
            }))
        }
        .await;
        log.end(out)
    }

    pub(super) async fn propose_change_call(
        &self,
        req: GrpcRequest<pb::ProposeChangeRequest>,
    ) -> Result<Response<pb::ChangeView>, Status> {
        let log = self.log(
            "ProposeChange",
            &req,
            req.get_ref().signature.as_ref(),
            None,
        );
        let out = async {
            self.admit(&req, req.get_ref().signature.as_ref())?;
            let m = req.into_inner();
            let call = ProposeCall {
                policy: m.policy,
                reason: m.reason,
                nonce: m.nonce,
                sig: sig(m.signature)?,
            };
            let v = self
                .run(move |d| d.propose(call).and_then(|c| change_view(d, &c)))
                .await?;
            Ok(Response::new(v))
        }
        .await;
        log.end(out)
    }

    pub(super) async fn get_change_call(
        &self,
        req: GrpcRequest<pb::GetChangeRequest>,
    ) -> Result<Response<pb::ChangeView>, Status> {
        let log = self.log("GetChange", &req, None, Some(&req.get_ref().id));
        let out = async {
            self.admit_read(&req)?;
            let id = req.into_inner().id;
            let v = self
                .run(move |d| d.change(&id).and_then(|c| change_view(d, &c)))
                .await?;
            Ok(Response::new(v))
        }
        .await;
        log.end(out)
    }

    pub(super) async fn approve_change_call(
        &self,
        req: GrpcRequest<pb::ApproveChangeRequest>,
    ) -> Result<Response<pb::ApproveChangeResponse>, Status> {
        let log = self.log(
            "ApproveChange",
            &req,
            req.get_ref().signature.as_ref(),
            Some(&req.get_ref().change_id),
        );
        let out = async {
            self.admit(&req, req.get_ref().signature.as_ref())?;
            let m = req.into_inner();
            let call = SubmitCall {
                request_id: m.change_id,
                sealed_share: m.sealed_share,
                sig: sig(m.signature)?,
                share_epoch: m.epoch,
                approve: Some(
                    digest32("new_policy_digest", &m.new_policy_digest)
                        .map_err(|e| super::status::to_status(&e))?,
                ),
            };
            let out = self
                .run(move |d| {
                    let p = d.submit(call)?;
                    let change = d.change(&p.request.id)?;
                    Ok(pb::ApproveChangeResponse {
                        accepted: p.accepted,
                        threshold: p.request.threshold,
                        quorum: p.request.state.is_terminal(),
                        change: Some(change_view(d, &change)?),
                    })
                })
                .await?;
            Ok(Response::new(out))
        }
        .await;
        log.end(out)
    }

    pub(super) async fn cancel_change_call(
        &self,
        req: GrpcRequest<pb::CancelChangeRequest>,
    ) -> Result<Response<pb::ChangeView>, Status> {
        let log = self.log(
            "CancelChange",
            &req,
            req.get_ref().signature.as_ref(),
            Some(&req.get_ref().change_id),
        );
        let out = async {
            self.admit(&req, req.get_ref().signature.as_ref())?;
            let m = req.into_inner();
            let s = sig(m.signature)?;
            let v = self
                .run(move |d| {
                    d.cancel_change(&m.change_id, &m.reason, s)
                        .and_then(|c| change_view(d, &c))
                })
                .await?;
            Ok(Response::new(v))
        }
        .await;
        log.end(out)
    }

    pub(super) async fn fetch_new_share_call(
        &self,
        req: GrpcRequest<pb::FetchNewShareRequest>,
    ) -> Result<Response<pb::FetchNewShareResponse>, Status> {
        let log = self.log(
            "FetchNewShare",
            &req,
            req.get_ref().signature.as_ref(),
            Some(&req.get_ref().change_id),
        );
        let out = async {
            self.admit(&req, req.get_ref().signature.as_ref())?;
            let m = req.into_inner();
            let s = sig(m.signature)?;
            let out = self
                .run(move |d| {
                    let (file, c) = d.fetch_new_share(&m.change_id, m.epoch, s)?;
                    Ok(pb::FetchNewShareResponse {
                        share_file: file,
                        epoch: m.epoch,
                        change: Some(change_view(d, &c)?),
                    })
                })
                .await?;
            Ok(Response::new(out))
        }
        .await;
        log.end(out)
    }

    pub(super) async fn confirm_new_share_call(
        &self,
        req: GrpcRequest<pb::ConfirmNewShareRequest>,
    ) -> Result<Response<pb::ConfirmNewShareResponse>, Status> {
        let log = self.log(
            "ConfirmNewShare",
            &req,
            req.get_ref().signature.as_ref(),
            Some(&req.get_ref().change_id),
        );
        let out = async {
            self.admit(&req, req.get_ref().signature.as_ref())?;
            let m = req.into_inner();
            let call = ConfirmCall {
                change_id: m.change_id,
                epoch: m.epoch,
                commitment: m.commitment,
                sealed_share: m.sealed_share,
                ephemeral_public: m.ephemeral_public_key,
                sig: sig(m.signature)?,
            };
            let out = self
                .run(move |d| {
                    let c = d.confirm_new_share(call)?;
                    Ok(pb::ConfirmNewShareResponse {
                        confirmed: u32::try_from(c.confirmed).unwrap_or(u32::MAX),
                        need: u32::try_from(c.need).unwrap_or(u32::MAX),
                        committed: c.committed,
                        epoch: c.epoch,
                        change: Some(change_view(d, &c.change)?),
                    })
                })
                .await?;
            Ok(Response::new(out))
        }
        .await;
        log.end(out)
    }
}
