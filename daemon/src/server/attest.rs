//! gRPC handlers of the readiness calls (attestations and the readiness
//! report): decode, call the [`Daemon`](crate::ops::Daemon), encode.

use tonic::{Request as GrpcRequest, Response, Status};

use breakglass_proto::pb;

use super::decode::sig;
use super::grpc::BreakGlassService;
use crate::engine::readiness::Report;
use crate::ops::AttestCall;

impl BreakGlassService {
    pub(super) async fn start_attestation_call(
        &self,
        req: GrpcRequest<pb::StartAttestationRequest>,
    ) -> Result<Response<pb::AttestationChallenge>, Status> {
        let log = self.log(
            "StartAttestation",
            &req,
            req.get_ref().signature.as_ref(),
            None,
        );
        let out = async {
            self.admit(&req, req.get_ref().signature.as_ref())?;
            let s = sig(req.into_inner().signature)?;
            let c = self.run(move |d| d.start_attestation(&s)).await?;
            Ok(Response::new(pb::AttestationChallenge {
                attestation_id: c.issued.id,
                custodian_id: c.issued.custodian,
                epoch: c.issued.epoch,
                public_key: c.issued.public_key.to_vec(),
                expires_at: c.issued.expires_at,
                daemon_signature: c.signature.to_vec(),
            }))
        }
        .await;
        log.end(out)
    }

    pub(super) async fn attest_share_call(
        &self,
        req: GrpcRequest<pb::AttestShareRequest>,
    ) -> Result<Response<pb::AttestShareResponse>, Status> {
        let log = self.log("AttestShare", &req, req.get_ref().signature.as_ref(), None);
        let out = async {
            self.admit(&req, req.get_ref().signature.as_ref())?;
            let m = req.into_inner();
            let call = AttestCall {
                attestation_id: m.attestation_id,
                sealed_share: m.sealed_share,
                sig: sig(m.signature)?,
            };
            let a = self.run(move |d| d.attest(&call)).await?;
            Ok(Response::new(pb::AttestShareResponse {
                custodian_id: a.custodian,
                epoch: a.epoch,
                attested_at: a.attested_at,
            }))
        }
        .await;
        log.end(out)
    }

    pub(super) async fn get_readiness_call(
        &self,
        req: GrpcRequest<pb::GetReadinessRequest>,
    ) -> Result<Response<pb::Readiness>, Status> {
        let log = self.log("GetReadiness", &req, None, None);
        let out = async {
            self.admit_read(&req)?;
            let (r, open) = self
                .run(|d| Ok((d.readiness()?, d.collecting_ids()?)))
                .await?;
            let daemon_id = self.daemon.meta().daemon_id.clone();
            Ok(Response::new(readiness(daemon_id, r, open)))
        }
        .await;
        log.end(out)
    }
}

fn readiness(daemon_id: String, r: Report, open_requests: Vec<String>) -> pb::Readiness {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let drill = r.last_drill.clone().unwrap_or_default();
    pb::Readiness {
        last_drill_at: drill.at.unwrap_or(0),
        last_drill_request_id: drill.request_id.unwrap_or_default(),
        last_drill_seconds_to_quorum: drill.seconds_to_quorum.unwrap_or(0),
        drill_due_at: r.drill_due_at,
        daemon_id,
        epoch: r.epoch,
        generated_at: r.now,
        attest_every_seconds: r.attest_every,
        drill_every_seconds: r.drill_every,
        threshold: u32::from(r.threshold),
        proven: count(r.proven),
        ready: r.ready,
        stale: r.stale,
        open_requests,
        custodians: r
            .custodians
            .into_iter()
            .map(|c| pb::CustodianReadiness {
                last_attested_at: c.proofs.last_proof(r.epoch).unwrap_or(0),
                last_approved_at: c.proofs.approved_at.unwrap_or(0),
                // Shown only while this epoch has a passed drill (the custodian's
                // own drill date carries no epoch: epochs change with issue 11).
                last_drill_at: c
                    .proofs
                    .drilled_at
                    .filter(|_| r.last_drill.is_some())
                    .unwrap_or(0),
                proven: c.proven,
                attest_due_at: c.due_at,
                id: c.id,
                name: c.name,
            })
            .collect(),
    }
}
