//! gRPC handlers: decode and validate, call the [`Daemon`], encode. Nothing else.

use std::sync::Arc;

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request as GrpcRequest, Response, Status};

use breakglass_proto::pb;

use super::calllog::CallLog;
use super::decode::{cert_identity, page_token, sig};
use super::limit::Limiter;
use super::status::to_status;
use super::view::view;
use crate::error::{Error, Result};
use crate::ops::{Daemon, OpenCall, SubmitCall};

/// A server stream of results.
pub type ResultStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The `breakglass.v1.BreakGlass` service.
#[derive(Clone)]
pub struct BreakGlassService {
    pub(super) daemon: Arc<Daemon>,
    limiter: Arc<Limiter>,
    reads: Arc<Limiter>,
    mtls: bool,
    metrics: Arc<crate::metrics::Metrics>,
}

impl BreakGlassService {
    /// Wraps a started daemon. `limiter` charges state-changing calls, `reads`
    /// the unsigned reads (each its own buckets, so reads cannot starve approvals).
    pub fn new(
        daemon: Arc<Daemon>,
        limiter: Arc<Limiter>,
        reads: Arc<Limiter>,
        mtls: bool,
    ) -> Self {
        BreakGlassService {
            metrics: daemon.metrics(),
            daemon,
            limiter,
            reads,
            mtls,
        }
    }

    /// The rate limit of unsigned reads, per peer and global.
    pub(super) fn admit_read<T>(&self, req: &GrpcRequest<T>) -> Result<(), Status> {
        self.reads
            .admit(req.remote_addr().map(|a| a.ip()))
            .map_err(|e| to_status(&e))
    }

    /// Rate limits (cheapest check: before decoding anything else), then, with mutual
    /// TLS, that the client certificate belongs to the signer.
    pub(super) fn admit<T>(
        &self,
        req: &GrpcRequest<T>,
        signer: Option<&pb::Signature>,
    ) -> Result<(), Status> {
        self.limiter
            .admit(req.remote_addr().map(|a| a.ip()))
            .map_err(|e| to_status(&e))?;
        if self.mtls {
            let cert = req
                .peer_certs()
                .and_then(|c| c.first().and_then(|d| cert_identity(d.as_ref())))
                .ok_or_else(|| {
                    to_status(&Error::CertMismatch {
                        cert: "(none)".into(),
                        signer: "(unknown)".into(),
                    })
                })?;
            if let Some(s) = signer {
                if s.signer_id != cert {
                    return Err(to_status(&Error::CertMismatch {
                        cert,
                        signer: s.signer_id.clone(),
                    }));
                }
            }
        }
        Ok(())
    }

    /// Starts the operational log line of a call.
    pub(super) fn log<T>(
        &self,
        method: &'static str,
        req: &GrpcRequest<T>,
        signature: Option<&pb::Signature>,
        request_id: Option<&String>,
    ) -> CallLog<'_> {
        CallLog::begin(
            self.metrics.as_ref(),
            method,
            req,
            signature,
            request_id.map(String::as_str),
        )
    }

    /// Runs a daemon operation on the blocking pool (it signs, decrypts and fsyncs).
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Daemon) -> Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let d = self.daemon.clone();
        tokio::task::spawn_blocking(move || f(&d))
            .await
            .map_err(|e| to_status(&Error::Internal(format!("worker failed: {e}"))))?
            .map_err(|e| to_status(&e))
    }
}

#[tonic::async_trait]
impl pb::break_glass_server::BreakGlass for BreakGlassService {
    async fn get_info(
        &self,
        req: GrpcRequest<pb::GetInfoRequest>,
    ) -> Result<Response<pb::GetInfoResponse>, Status> {
        let log = self.log("GetInfo", &req, None, None);
        if let Err(e) = self.admit_read(&req) {
            return log.end(Err(e));
        }
        let audit_head = match self.run(|d| d.store().audit_head()).await {
            Ok(h) => h,
            Err(e) => return log.end(Err(e)),
        };
        let v = super::view::info(&self.daemon, audit_head).map_err(|e| to_status(&e));
        log.end(v.map(Response::new))
    }

    async fn open_request(
        &self,
        req: GrpcRequest<pb::OpenRequestRequest>,
    ) -> Result<Response<pb::RequestView>, Status> {
        let mut log = self.log("OpenRequest", &req, req.get_ref().signature.as_ref(), None);
        let out = async {
            self.admit(&req, req.get_ref().signature.as_ref())?;
            let m = req.into_inner();
            let call = OpenCall {
                scope: m.scope,
                reason: m.reason,
                ttl_seconds: m.ttl_seconds,
                ssh_public_key: m.ssh_public_key,
                nonce: m.nonce,
                kind: match pb::RequestKind::try_from(m.kind) {
                    Ok(pb::RequestKind::Access) => crate::engine::request::Kind::Access,
                    Ok(pb::RequestKind::Drill) => crate::engine::request::Kind::Drill,
                    Ok(pb::RequestKind::Change) => {
                        return Err(to_status(&Error::invalid(
                            "kind",
                            "a policy change is not opened with OpenRequest: propose it with `breakglass policy propose`",
                        )))
                    }
                    Err(_) => {
                        return Err(to_status(&Error::invalid(
                            "kind",
                            format!("{} is not a request kind (0 access, 1 drill; a change is proposed)", m.kind),
                        )))
                    }
                },
                sig: sig(m.signature)?,
            };
            let v = self.run(move |d| d.open(call).map(|r| view(d, &r))).await?;
            Ok(Response::new(v))
        }
        .await;
        if let Ok(v) = &out {
            log.request(&v.get_ref().id);
        }
        log.end(out)
    }

    async fn get_request(
        &self,
        req: GrpcRequest<pb::GetRequestRequest>,
    ) -> Result<Response<pb::RequestView>, Status> {
        let log = self.log("GetRequest", &req, None, Some(&req.get_ref().id));
        let out = async {
            self.admit_read(&req)?;
            let id = req.into_inner().id;
            let v = self.run(move |d| d.get(&id).map(|r| view(d, &r))).await?;
            Ok(Response::new(v))
        }
        .await;
        log.end(out)
    }

    async fn list_requests(
        &self,
        req: GrpcRequest<pb::ListRequestsRequest>,
    ) -> Result<Response<pb::ListRequestsResponse>, Status> {
        let log = self.log("ListRequests", &req, None, None);
        let out = async {
            self.admit_read(&req)?;
            let m = req.into_inner();
            let limit = if m.limit == 0 { 100 } else { m.limit.min(1000) } as usize;
            let before = page_token(&m.page_token)?;
            let (requests, next) = self
                .run(move |d| {
                    d.list(m.collecting_only, before.as_ref(), limit)
                        .map(|(rs, next)| (rs.iter().map(|r| view(d, r)).collect(), next))
                })
                .await?;
            Ok(Response::new(pb::ListRequestsResponse {
                requests,
                next_page_token: next
                    .map(|c| format!("{}:{}", c.opened_at, c.id))
                    .unwrap_or_default(),
            }))
        }
        .await;
        log.end(out)
    }

    async fn submit_share(
        &self,
        req: GrpcRequest<pb::SubmitShareRequest>,
    ) -> Result<Response<pb::SubmitShareResponse>, Status> {
        let log = self.log(
            "SubmitShare",
            &req,
            req.get_ref().signature.as_ref(),
            Some(&req.get_ref().request_id),
        );
        let out = async {
            self.admit(&req, req.get_ref().signature.as_ref())?;
            let m = req.into_inner();
            let call = SubmitCall {
                request_id: m.request_id,
                sealed_share: m.sealed_share,
                sig: sig(m.signature)?,
                share_epoch: m.share_epoch,
                approve: None,
            };
            let out = self
                .run(move |d| {
                    d.submit(call).map(|p| pb::SubmitShareResponse {
                        accepted: p.accepted,
                        threshold: p.request.threshold,
                        unlocked: p.unlocked,
                        request: Some(view(d, &p.request)),
                    })
                })
                .await?;
            Ok(Response::new(out))
        }
        .await;
        log.end(out)
    }

    async fn cancel_request(
        &self,
        req: GrpcRequest<pb::CancelRequestRequest>,
    ) -> Result<Response<pb::RequestView>, Status> {
        let log = self.log(
            "CancelRequest",
            &req,
            req.get_ref().signature.as_ref(),
            Some(&req.get_ref().request_id),
        );
        let out = async {
            self.admit(&req, req.get_ref().signature.as_ref())?;
            let m = req.into_inner();
            let s = sig(m.signature)?;
            let v = self
                .run(move |d| d.cancel(&m.request_id, &m.reason, s).map(|r| view(d, &r)))
                .await?;
            Ok(Response::new(v))
        }
        .await;
        log.end(out)
    }

    async fn fetch_credential(
        &self,
        req: GrpcRequest<pb::FetchCredentialRequest>,
    ) -> Result<Response<pb::FetchCredentialResponse>, Status> {
        let log = self.log(
            "FetchCredential",
            &req,
            req.get_ref().signature.as_ref(),
            Some(&req.get_ref().request_id),
        );
        let out = async {
            self.admit(&req, req.get_ref().signature.as_ref())?;
            let m = req.into_inner();
            let s = sig(m.signature)?;
            let out = self
                .run(move |d| {
                    d.fetch(&m.request_id, s)
                        .map(|(r, c)| pb::FetchCredentialResponse {
                            request_id: r.id,
                            encrypted_credential: c.sealed,
                            expires_at: c.expires_at,
                        })
                })
                .await?;
            Ok(Response::new(out))
        }
        .await;
        log.end(out)
    }

    async fn revoke_credential(
        &self,
        req: GrpcRequest<pb::RevokeCredentialRequest>,
    ) -> Result<Response<pb::RequestView>, Status> {
        let log = self.log(
            "RevokeCredential",
            &req,
            req.get_ref().signature.as_ref(),
            Some(&req.get_ref().request_id),
        );
        let out = async {
            self.admit(&req, req.get_ref().signature.as_ref())?;
            let m = req.into_inner();
            let s = sig(m.signature)?;
            let v = self
                .run(move |d| d.revoke(&m.request_id, &m.reason, s).map(|r| view(d, &r)))
                .await?;
            Ok(Response::new(v))
        }
        .await;
        log.end(out)
    }

    async fn get_revocations(
        &self,
        req: GrpcRequest<pb::GetRevocationsRequest>,
    ) -> Result<Response<pb::GetRevocationsResponse>, Status> {
        let log = self.log("GetRevocations", &req, None, None);
        let out = async {
            self.admit_read(&req)?;
            let include_expired = req.get_ref().include_expired;
            let out = self
                .run(move |d| {
                    let list = d.revocations(include_expired)?;
                    Ok(pb::GetRevocationsResponse {
                        revocations: list
                            .items
                            .into_iter()
                            .map(|i| pb::Revocation {
                                request_id: i.request_id,
                                ssh_key_id: i.ssh_key_id,
                                ssh_serial: i.ssh_serial,
                                revoked_at: i.revoked_at,
                                revoked_by: i.revoked_by,
                                reason: i.reason,
                                expires_at: i.expires_at,
                            })
                            .collect(),
                        generated_at: list.generated_at,
                        authority_ssh: d.authority()?.ssh(),
                        daemon_signature: list.signature.to_vec(),
                    })
                })
                .await?;
            Ok(Response::new(out))
        }
        .await;
        log.end(out)
    }

    type AuditExportStream = ResultStream<pb::AuditRecord>;

    async fn audit_export(
        &self,
        req: GrpcRequest<pb::AuditExportRequest>,
    ) -> Result<Response<Self::AuditExportStream>, Status> {
        let log = self.log("AuditExport", &req, None, None);
        let out = async {
            self.admit_read(&req)?;
            self.export_stream(req.into_inner().since).await
        }
        .await;
        log.end(out)
    }

    type WatchAuditStream = ResultStream<pb::AuditRecord>;

    async fn watch_audit(
        &self,
        req: GrpcRequest<pb::WatchAuditRequest>,
    ) -> Result<Response<Self::WatchAuditStream>, Status> {
        let log = self.log("WatchAudit", &req, None, None);
        let out = async {
            self.admit_read(&req)?;
            self.watch_audit_stream(req.into_inner().since).await
        }
        .await;
        log.end(out)
    }

    type WatchRequestStream = ResultStream<pb::RequestView>;

    async fn watch_request(
        &self,
        req: GrpcRequest<pb::WatchRequestRequest>,
    ) -> Result<Response<Self::WatchRequestStream>, Status> {
        let log = self.log("WatchRequest", &req, None, Some(&req.get_ref().id));
        let out = async {
            self.admit_read(&req)?;
            self.watch_request_stream(req.into_inner().id).await
        }
        .await;
        log.end(out)
    }

    async fn start_attestation(
        &self,
        req: GrpcRequest<pb::StartAttestationRequest>,
    ) -> Result<Response<pb::AttestationChallenge>, Status> {
        self.start_attestation_call(req).await
    }

    async fn attest_share(
        &self,
        req: GrpcRequest<pb::AttestShareRequest>,
    ) -> Result<Response<pb::AttestShareResponse>, Status> {
        self.attest_share_call(req).await
    }

    async fn get_readiness(
        &self,
        req: GrpcRequest<pb::GetReadinessRequest>,
    ) -> Result<Response<pb::Readiness>, Status> {
        self.get_readiness_call(req).await
    }

    async fn check_policy(
        &self,
        req: GrpcRequest<pb::CheckPolicyRequest>,
    ) -> Result<Response<pb::CheckPolicyResponse>, Status> {
        self.check_policy_call(req).await
    }

    async fn propose_change(
        &self,
        req: GrpcRequest<pb::ProposeChangeRequest>,
    ) -> Result<Response<pb::ChangeView>, Status> {
        self.propose_change_call(req).await
    }

    async fn get_change(
        &self,
        req: GrpcRequest<pb::GetChangeRequest>,
    ) -> Result<Response<pb::ChangeView>, Status> {
        self.get_change_call(req).await
    }

    async fn approve_change(
        &self,
        req: GrpcRequest<pb::ApproveChangeRequest>,
    ) -> Result<Response<pb::ApproveChangeResponse>, Status> {
        self.approve_change_call(req).await
    }

    async fn cancel_change(
        &self,
        req: GrpcRequest<pb::CancelChangeRequest>,
    ) -> Result<Response<pb::ChangeView>, Status> {
        self.cancel_change_call(req).await
    }

    async fn fetch_new_share(
        &self,
        req: GrpcRequest<pb::FetchNewShareRequest>,
    ) -> Result<Response<pb::FetchNewShareResponse>, Status> {
        self.fetch_new_share_call(req).await
    }

    async fn confirm_new_share(
        &self,
        req: GrpcRequest<pb::ConfirmNewShareRequest>,
    ) -> Result<Response<pb::ConfirmNewShareResponse>, Status> {
        self.confirm_new_share_call(req).await
    }
}
