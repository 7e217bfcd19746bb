//! The typed client: connects, learns the daemon's identity with `GetInfo`,
//! signs calls with the caller's key, and checks what the daemon returns
//! (D's signature over every request view, the recomputed request digest, the
//! daemon id) before anyone acts on it.

mod attest;
mod change;
mod drill;
pub use attest::Attested;
pub use change::{Change, NewShare};

use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signature, VerifyingKey};
use tonic::transport::Channel;

use breakglass_formats::audit::{AuditEntry, ExportTrailer};
use breakglass_formats::credential::CredentialBundle;
use breakglass_formats::envelope;
use breakglass_formats::share_file::{self, Genuine, ShareFile};
use breakglass_proto::pb::break_glass_client::BreakGlassClient;
use breakglass_proto::{pb, signing, transport};

use crate::connect::{channel, ConnectOptions};
use crate::error::{ClientError, Result};
use crate::identity::Identity;

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A connected client.
#[derive(Clone)]
pub struct Client {
    rpc: BreakGlassClient<Channel>,
    info: pb::GetInfoResponse,
    daemon_key: VerifyingKey,
}

/// Which role a key plays in the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A custodian.
    Custodian,
    /// A commander.
    Commander,
}

impl Client {
    /// Connects over TLS and fetches the daemon's description.
    pub async fn connect(opts: &ConnectOptions) -> Result<Client> {
        let ch = channel(opts).await?;
        let mut rpc = BreakGlassClient::new(ch);
        let info = rpc
            .get_info(pb::GetInfoRequest {})
            .await
            .map_err(|st| {
                let mut text = format!("{st:?}");
                let mut chain = String::new();
                let mut src = std::error::Error::source(&st);
                while let Some(e) = src {
                    text.push_str(&format!(" {e} {e:?}"));
                    chain.push_str(&format!(": {e}"));
                    src = e.source();
                }
                let why = if text.contains("CertificateRequired") {
                    "the daemon requires a client certificate (mutual TLS): pass --client-cert and --client-key".to_string()
                } else if text.contains("UnknownCA") || text.contains("BadCertificate") || text.contains("DecryptError") {
                    "the daemon refused the client certificate: it must be issued by the daemon's client CA".to_string()
                } else if matches!(st.code(), tonic::Code::Unknown | tonic::Code::Unavailable | tonic::Code::Cancelled) {
                    let hint = if opts.client_cert.is_none() {
                        " (if the daemon requires client certificates, pass --client-cert and --client-key)"
                    } else {
                        ""
                    };
                    format!("{}: {}{chain}{hint}", crate::error::code_name(st.code()), st.message())
                } else {
                    return ClientError::Status(st);
                };
                ClientError::Connect { addr: opts.addr.clone(), why }
            })?
            .into_inner();
        Client::with_info(rpc, info)
    }

    /// Talks to a daemon served in the same process over `tokio::io::duplex`
    /// (`breakglass_daemon::serve_duplex_insecure`): the fast service tests'
    /// transport. No TLS, so it takes only a `DuplexStream`, never a socket.
    pub async fn over_duplex(io: tokio::io::DuplexStream) -> Result<Client> {
        let mut io = Some(io);
        let ch = tonic::transport::Endpoint::from_static("http://in-process")
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let io = io.take();
                async move {
                    io.map(hyper_util::rt::TokioIo::new).ok_or_else(|| {
                        std::io::Error::other("the in-process stream was used already")
                    })
                }
            }))
            .await
            .map_err(|e| ClientError::Connect {
                addr: "in-process".into(),
                why: e.to_string(),
            })?;
        let mut rpc = BreakGlassClient::new(ch);
        let info = rpc.get_info(pb::GetInfoRequest {}).await?.into_inner();
        Client::with_info(rpc, info)
    }

    fn with_info(rpc: BreakGlassClient<Channel>, info: pb::GetInfoResponse) -> Result<Client> {
        let arr: [u8; 32] = info
            .daemon_public_key
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Untrusted("daemon public key is not 32 bytes".into()))?;
        let daemon_key = VerifyingKey::from_bytes(&arr)
            .map_err(|e| ClientError::Untrusted(format!("daemon public key: {e}")))?;
        Ok(Client {
            rpc,
            info,
            daemon_key,
        })
    }

    /// The daemon's description.
    pub fn info(&self) -> &pb::GetInfoResponse {
        &self.info
    }

    /// The raw gRPC client, for calls the typed API does not cover (and for tests that send bad input).
    pub fn rpc(&mut self) -> &mut BreakGlassClient<Channel> {
        &mut self.rpc
    }

    /// The policy id of `me` in `role`, or `explicit` if given (checked against the key).
    pub fn whoami(&self, me: &Identity, role: Role, explicit: Option<&str>) -> Result<String> {
        let mine = me.ssh_public();
        let (members, what): (Vec<(&str, &str)>, &str) = match role {
            Role::Custodian => (
                self.info
                    .custodians
                    .iter()
                    .map(|c| (c.id.as_str(), c.ssh_public_key.as_str()))
                    .collect(),
                "custodian",
            ),
            Role::Commander => (
                self.info
                    .commanders
                    .iter()
                    .map(|c| (c.id.as_str(), c.ssh_public_key.as_str()))
                    .collect(),
                "commander",
            ),
        };
        if let Some(id) = explicit {
            return Ok(id.to_string());
        }
        members.iter().find(|(_, k)| *k == mine).map(|(id, _)| id.to_string()).ok_or_else(|| {
            ClientError::NotRegistered(format!(
                "the key {} ({mine}) is not a {what} of daemon {}; use the key the policy names, or --as ID",
                me.path().display(),
                self.info.daemon_id
            ))
        })
    }

    fn signature(
        &self,
        me: &Identity,
        id: &str,
        payload: &[u8],
        signed_at: u64,
    ) -> Result<pb::Signature> {
        Ok(pb::Signature {
            signer_id: id.to_string(),
            signed_at,
            signature: me.sign_call(payload)?,
        })
    }

    /// Checks a request view: daemon id, recomputed digest, and D's signature.
    pub fn check_view(&self, v: &pb::RequestView) -> Result<()> {
        self.check_view_bound(v, None)
    }

    /// [`Client::check_view`]; a change request's digest also binds the
    /// epoch and both policy digests, which its `ChangeView` carries.
    fn check_view_bound(&self, v: &pb::RequestView, change: Option<&pb::ChangeView>) -> Result<()> {
        if v.daemon_id != self.info.daemon_id {
            return Err(ClientError::Untrusted(format!(
                "request {} belongs to daemon {}, not {}",
                v.id, v.daemon_id, self.info.daemon_id
            )));
        }
        let eph: [u8; 32] = v
            .ephemeral_public_key
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Untrusted("ephemeral key is not 32 bytes".into()))?;
        let fields = signing::RequestFields {
            daemon_id: &v.daemon_id,
            request_id: &v.id,
            requester: &v.requester,
            scope: &v.scope,
            reason: &v.reason,
            ttl_seconds: v.ttl_seconds,
            opened_at: v.opened_at,
            deadline: v.deadline,
            threshold: v.threshold,
            ephemeral_public: &eph,
            ssh_public_key: &v.ssh_public_key,
        };
        // The kind picks the digest's domain, so a drill can never be shown as
        // access (or the reverse) without the digest failing here.
        let digest = match pb::RequestKind::try_from(v.kind) {
            Ok(pb::RequestKind::Access) => signing::request_digest(&fields),
            Ok(pb::RequestKind::Drill) => signing::drill_digest(&fields),
            // A change's digest binds the policies it changes, which a request
            // view does not carry: it is never verified (or shown) as one.
            Ok(pb::RequestKind::Change) => {
                // Listed or watched without its policies: D's signature over
                // the digest as given is all that can be checked, and callers
                // never show it as access (`submit` refuses it; `policy show`
                // checks the whole change).
                let Some(c) = change else {
                    let d: [u8; 32] = v.digest.as_slice().try_into().map_err(|_| {
                        ClientError::Untrusted(format!("change {}: digest is not 32 bytes", v.id))
                    })?;
                    return self.check_view_signature(v, &d);
                };
                let d32 = |what: &str, b: &[u8]| -> Result<[u8; 32]> {
                    b.try_into().map_err(|_| {
                        ClientError::Untrusted(format!("change {}: {what} is not 32 bytes", v.id))
                    })
                };
                signing::change_digest(&signing::ChangeFields {
                    daemon_id: &v.daemon_id,
                    change_id: &v.id,
                    proposer: &v.requester,
                    reason: &v.reason,
                    epoch: c.epoch,
                    current_policy_digest: &d32("current policy digest", &c.current_policy_digest)?,
                    new_policy_digest: &d32("new policy digest", &c.new_policy_digest)?,
                    opened_at: v.opened_at,
                    deadline: v.deadline,
                    threshold: v.threshold,
                    ephemeral_public: &eph,
                })
            }
            Err(_) => {
                return Err(ClientError::Untrusted(format!(
                    "request {} has unknown kind {}",
                    v.id, v.kind
                )))
            }
        };
        if digest.as_slice() != v.digest.as_slice() {
            return Err(ClientError::Untrusted(format!(
                "request {}: digest does not match its fields",
                v.id
            )));
        }
        self.check_view_signature(v, &digest)
    }

    /// D's signature over a request view's status, for `digest`.
    fn check_view_signature(&self, v: &pb::RequestView, digest: &[u8; 32]) -> Result<()> {
        let approvals: Vec<(String, u64)> = v
            .approvals
            .iter()
            .map(|a| (a.custodian_id.clone(), a.accepted_at))
            .collect();
        let payload = signing::request_view(
            digest,
            &signing::RequestStatus {
                state: v.state,
                approvals: &approvals,
                closed_at: v.closed_at,
                close_reason: &v.close_reason,
                credential_expires_at: v.credential_expires_at,
                revoked_at: v.revoked_at,
                revoked_by: &v.revoked_by,
                revoke_reason: &v.revoke_reason,
            },
        );
        let sig = Signature::from_slice(&v.daemon_signature).map_err(|_| {
            ClientError::Untrusted(format!("request {}: daemon signature malformed", v.id))
        })?;
        self.daemon_key.verify_strict(&payload, &sig).map_err(|_| {
            ClientError::Untrusted(format!("request {}: not signed by this daemon's key", v.id))
        })
    }

    /// Opens a request as commander `me`. `ssh_public_key` is the OpenSSH key to certify
    /// (needed when the scope mints SSH certificates, empty otherwise).
    pub async fn open(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        scope: &str,
        reason: &str,
        ttl: u64,
        ssh_public_key: &str,
    ) -> Result<pb::RequestView> {
        let id = self.whoami(me, Role::Commander, as_id)?;
        let nonce = signing::new_nonce(&mut rand_core::OsRng);
        let at = unix_now();
        let payload = signing::open_request(
            &self.info.daemon_id,
            &id,
            scope,
            reason,
            ttl,
            ssh_public_key,
            &nonce,
            at,
        );
        let msg = pb::OpenRequestRequest {
            scope: scope.to_string(),
            reason: reason.to_string(),
            ttl_seconds: ttl,
            nonce: nonce.to_vec(),
            signature: Some(self.signature(me, &id, &payload, at)?),
            ssh_public_key: ssh_public_key.to_string(),
            kind: pb::RequestKind::Access as i32,
        };
        let v = self.rpc.open_request(msg).await?.into_inner();
        self.check_view(&v)?;
        if v.kind != pb::RequestKind::Access as i32 {
            return Err(ClientError::Untrusted(format!(
                "request {} was opened as a drill, not as access",
                v.id
            )));
        }
        Ok(v)
    }

    /// Whether `scope` mints `kind` (`ssh` or `token`), per the daemon's policy.
    pub fn scope_mints(&self, scope: &str, kind: &str) -> bool {
        self.info
            .scopes
            .iter()
            .any(|s| s.name == scope && s.credentials.iter().any(|k| k == kind))
    }

    /// Revokes the credential of `request_id` as its requester or a custodian.
    pub async fn revoke(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        request_id: &str,
        reason: &str,
    ) -> Result<pb::RequestView> {
        let (v, signature) = self
            .sign_for_request(me, as_id, request_id, |d, r, g, s, at| {
                signing::revoke_credential(d, r, g, s, reason, at)
            })
            .await?;
        let msg = pb::RevokeCredentialRequest {
            request_id: v.id,
            reason: reason.to_string(),
            signature: Some(signature),
        };
        let out = self.rpc.revoke_credential(msg).await?.into_inner();
        self.check_view(&out)?;
        Ok(out)
    }

    /// Fetches `request_id`, works out who signs (`as_id`, else the commander or custodian
    /// whose key `me` is), and signs the payload `build` makes for that request.
    async fn sign_for_request(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        request_id: &str,
        build: impl FnOnce(&str, &str, &signing::RequestDigest, &str, u64) -> Vec<u8>,
    ) -> Result<(pb::RequestView, pb::Signature)> {
        let v = self.get(request_id).await?;
        let id = match as_id {
            Some(id) => id.to_string(),
            None => self
                .whoami(me, Role::Commander, None)
                .or_else(|_| self.whoami(me, Role::Custodian, None))?,
        };
        let digest: [u8; 32] = v
            .digest
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Untrusted("digest is not 32 bytes".into()))?;
        let at = unix_now();
        let payload = build(&self.info.daemon_id, &v.id, &digest, &id, at);
        let signature = self.signature(me, &id, &payload, at)?;
        Ok((v, signature))
    }

    /// The revocation list, with the daemon's signature checked: revoked
    /// credentials still valid now, or every one ever revoked with `include_expired`.
    pub async fn revocations(
        &mut self,
        include_expired: bool,
    ) -> Result<pb::GetRevocationsResponse> {
        let list = self
            .rpc
            .get_revocations(pb::GetRevocationsRequest { include_expired })
            .await?
            .into_inner();
        let entries: Vec<signing::RevokedEntry<'_>> = list
            .revocations
            .iter()
            .map(|r| signing::RevokedEntry {
                request_id: &r.request_id,
                ssh_key_id: &r.ssh_key_id,
                ssh_serial: r.ssh_serial,
                revoked_at: r.revoked_at,
                revoked_by: &r.revoked_by,
                reason: &r.reason,
                expires_at: r.expires_at,
            })
            .collect();
        let authority: [u8; 32] = self
            .info
            .authority_public_key
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Untrusted("authority public key is not 32 bytes".into()))?;
        let payload = signing::revocation_list(
            &self.info.daemon_id,
            list.generated_at,
            &authority,
            &entries,
        );
        let sig = Signature::from_slice(&list.daemon_signature)
            .map_err(|_| ClientError::Untrusted("revocation list signature malformed".into()))?;
        self.daemon_key.verify_strict(&payload, &sig).map_err(|_| {
            ClientError::Untrusted("revocation list not signed by this daemon's key".into())
        })?;
        if list.authority_ssh.split_whitespace().nth(1)
            != self.info.authority_ssh.split_whitespace().nth(1)
        {
            return Err(ClientError::Untrusted(
                "revocation list names another authority".into(),
            ));
        }
        Ok(list)
    }

    /// One request, verified.
    pub async fn get(&mut self, id: &str) -> Result<pb::RequestView> {
        let v = self
            .rpc
            .get_request(pb::GetRequestRequest { id: id.to_string() })
            .await?
            .into_inner();
        self.check_view(&v)?;
        Ok(v)
    }

    /// The newest requests (one page of 100), verified.
    pub async fn list(&mut self, collecting_only: bool) -> Result<Vec<pb::RequestView>> {
        Ok(self.list_page(collecting_only, 0, "").await?.0)
    }

    /// One page of requests, newest first, verified, and the token of the next
    /// (older) page, empty after the last.
    pub async fn list_page(
        &mut self,
        collecting_only: bool,
        limit: u32,
        page_token: &str,
    ) -> Result<(Vec<pb::RequestView>, String)> {
        let rs = self
            .rpc
            .list_requests(pb::ListRequestsRequest {
                collecting_only,
                limit,
                page_token: page_token.to_string(),
            })
            .await?
            .into_inner();
        for v in &rs.requests {
            self.check_view(v)?;
        }
        Ok((rs.requests, rs.next_page_token))
    }

    /// Decrypts and checks a share file for this daemon with `me`'s key.
    pub fn read_share_file(&self, me: &Identity, path: &std::path::Path) -> Result<ShareFile> {
        let p = path.display().to_string();
        let f = open_share_file(me, path)?;
        if f.daemon_id != self.info.daemon_id || f.ceremony_id != self.info.ceremony_id {
            return Err(ClientError::ShareFile {
                path: p,
                why: format!(
                    "it is for daemon {} ceremony {}, but this daemon is {} ceremony {}: it is from another or an older ceremony",
                    f.daemon_id, f.ceremony_id, self.info.daemon_id, self.info.ceremony_id
                ),
            });
        }
        Ok(f)
    }

    /// Proves online that a share file is this daemon's: its share matches the
    /// commitment the daemon publishes for its custodian, D's signature over
    /// that commitment's statement verifies, and a v2 file is signed by this
    /// daemon's D. Works for v1 files too (through the published commitment).
    pub fn check_share_origin(&self, f: &ShareFile, path: &std::path::Path) -> Result<Genuine> {
        let bad = |why: String| ClientError::ShareFile {
            path: path.display().to_string(),
            why,
        };
        let cu = self
            .info
            .custodians
            .iter()
            .find(|c| c.id == f.custodian_id)
            .ok_or_else(|| {
                bad(format!(
                    "it names custodian {}, who is not a custodian of daemon {}",
                    f.custodian_id, self.info.daemon_id
                ))
            })?;
        let published: [u8; 32] = cu.share_commitment.as_slice().try_into().map_err(|_| {
            ClientError::Untrusted(format!(
                "the daemon publishes no share commitment for custodian {} (an older daemon?)",
                cu.id
            ))
        })?;
        let sig: [u8; 64] = cu.share_signature.as_slice().try_into().map_err(|_| {
            ClientError::Untrusted(format!(
                "the daemon publishes no signature over custodian {}'s share commitment",
                cu.id
            ))
        })?;
        let byte = |what: &str, v: u64| {
            u8::try_from(v).map_err(|_| ClientError::Untrusted(format!("{what} {v} is not a byte")))
        };
        let x = byte("share x", u64::from(cu.share_x))?;
        let threshold = byte("threshold", u64::from(self.info.threshold))?;
        let custodians = byte("number of custodians", self.info.custodians.len() as u64)?;
        let statement = signing::share_statement(&signing::ShareStatement {
            daemon_id: &self.info.daemon_id,
            ceremony_id: &self.info.ceremony_id,
            epoch: self.info.epoch,
            custodian_id: &cu.id,
            x,
            commitment: &published,
            threshold,
            custodians,
        });
        self.daemon_key
            .verify_strict(&statement, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| {
                ClientError::Untrusted(format!(
                    "D's signature over custodian {}'s published share commitment does not verify",
                    cu.id
                ))
            })?;
        let recomputed = f.recomputed_commitment().map_err(|e| bad(e.to_string()))?;
        let file_x = f.x().map_err(|e| bad(e.to_string()))?;
        if recomputed != published || file_x != x || f.epoch() != self.info.epoch {
            return Err(bad(format!(
                "its share does not match the commitment daemon {} publishes for custodian {} (epoch {}): it is not the share the ceremony made for {}, or it is from another epoch; do not use it, ask your operator",
                self.info.daemon_id, cu.id, self.info.epoch, cu.id
            )));
        }
        if f.format != share_file::SHARE_FILE_FORMAT_V1 {
            f.check_origin(Some(&self.daemon_key.to_bytes()))
                .map_err(|e| bad(e.to_string()))?;
        }
        Ok(Genuine {
            x,
            epoch: self.info.epoch,
            commitment: published,
            daemon_public_key: self.daemon_key.to_bytes(),
            daemon_key_expected: true,
        })
    }

    /// Submits `share` for request `view` as custodian `me`.
    pub async fn submit(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        view: &pb::RequestView,
        share: &ShareFile,
    ) -> Result<pb::SubmitShareResponse> {
        self.check_view(view)?;
        if view.kind == pb::RequestKind::Change as i32 {
            return Err(ClientError::Other(format!(
                "{} is a policy change: approve it with `breakglass policy approve {}`, which shows what it changes",
                view.id, view.id
            )));
        }
        let id = self.whoami(
            me,
            Role::Custodian,
            as_id.or(Some(share.custodian_id.as_str())),
        )?;
        let eph: [u8; 32] = view
            .ephemeral_public_key
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Untrusted("ephemeral key is not 32 bytes".into()))?;
        let digest: [u8; 32] = view
            .digest
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Untrusted("digest is not 32 bytes".into()))?;
        let bytes = share.share_bytes().map_err(|e| ClientError::ShareFile {
            path: "(share)".into(),
            why: e.to_string(),
        })?;
        let sealed = transport::seal_share(&eph, &digest, &view.id, &id, &bytes, rand_core::OsRng)
            .map_err(|e| ClientError::Other(e.to_string()))?;
        drop(bytes);
        let at = unix_now();
        let payload = signing::submit_share_of_epoch(
            &self.info.daemon_id,
            &view.id,
            &digest,
            &id,
            &sealed,
            share.epoch(),
            at,
        );
        let msg = pb::SubmitShareRequest {
            request_id: view.id.clone(),
            sealed_share: sealed,
            signature: Some(self.signature(me, &id, &payload, at)?),
            share_epoch: share.epoch(),
        };
        let out = self.rpc.submit_share(msg).await?.into_inner();
        if let Some(v) = &out.request {
            self.check_view(v)?;
        }
        Ok(out)
    }

    /// Cancels a request as its requester or a custodian.
    pub async fn cancel(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        request_id: &str,
        reason: &str,
    ) -> Result<pb::RequestView> {
        let (v, signature) = self
            .sign_for_request(me, as_id, request_id, |d, r, g, s, at| {
                signing::cancel_request(d, r, g, s, reason, at)
            })
            .await?;
        let msg = pb::CancelRequestRequest {
            request_id: v.id,
            reason: reason.to_string(),
            signature: Some(signature),
        };
        let out = self.rpc.cancel_request(msg).await?.into_inner();
        self.check_view(&out)?;
        Ok(out)
    }

    /// Fetches and decrypts the credential as its requester.
    pub async fn fetch(
        &mut self,
        me: &Identity,
        as_id: Option<&str>,
        request_id: &str,
    ) -> Result<CredentialBundle> {
        let v = self.get(request_id).await?;
        let id = self.whoami(me, Role::Commander, as_id)?;
        let digest: [u8; 32] = v
            .digest
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Untrusted("digest is not 32 bytes".into()))?;
        let at = unix_now();
        let payload = signing::fetch_credential(&self.info.daemon_id, &v.id, &digest, &id, at);
        let msg = pb::FetchCredentialRequest {
            request_id: v.id.clone(),
            signature: Some(self.signature(me, &id, &payload, at)?),
        };
        let out = self.rpc.fetch_credential(msg).await?.into_inner();
        let plain = envelope::decrypt(me.age(), &out.encrypted_credential).map_err(|why| {
            ClientError::Credential(format!(
                "cannot decrypt with {}: {why}",
                me.path().display()
            ))
        })?;
        let bundle: CredentialBundle = serde_json::from_slice(&plain)
            .map_err(|e| ClientError::Credential(format!("not a credential bundle: {e}")))?;
        if bundle.request_id != v.id
            || bundle.authority_public_key != hex::encode(&self.info.authority_public_key)
        {
            return Err(ClientError::Credential(
                "the bundle names another request or authority".into(),
            ));
        }
        Ok(bundle)
    }
}

impl Client {
    /// The audit log from `since` to its current end, each entry parsed.
    pub async fn audit_export(&mut self, since: u64) -> Result<Vec<AuditEntry>> {
        Ok(self.audit_export_signed(since).await?.0)
    }

    /// The audit log from `since` and the trailer D signed over the head it was
    /// cut at (absent only if the daemon predates trailers).
    pub async fn audit_export_signed(
        &mut self,
        since: u64,
    ) -> Result<(Vec<AuditEntry>, Option<ExportTrailer>)> {
        let mut stream = self
            .rpc
            .audit_export(pb::AuditExportRequest { since })
            .await?
            .into_inner();
        let mut out = Vec::new();
        let mut trailer = None;
        while let Some(r) = stream.message().await? {
            match r.trailer {
                Some(t) => {
                    trailer = Some(ExportTrailer {
                        daemon_id: t.daemon_id,
                        seq: t.seq,
                        head_hash: hex::encode(&t.head_hash),
                        generated_at: t.generated_at,
                        signature: hex::encode(&t.daemon_signature),
                    })
                }
                None => out.push(parse_record(&r)?),
            }
        }
        Ok((out, trailer))
    }

    /// The sequence number of the last audit entry now (0 if the log is empty).
    pub async fn audit_head(&mut self) -> Result<u64> {
        Ok(self
            .rpc
            .get_info(pb::GetInfoRequest {})
            .await?
            .into_inner()
            .audit_head)
    }

    /// The audit log from `since` (0: only new entries), then live.
    pub async fn watch_audit(&mut self, since: u64) -> Result<tonic::Streaming<pb::AuditRecord>> {
        Ok(self
            .rpc
            .watch_audit(pb::WatchAuditRequest { since })
            .await?
            .into_inner())
    }

    /// A request's view now and after every change, until it is terminal.
    pub async fn watch_request(&mut self, id: &str) -> Result<tonic::Streaming<pb::RequestView>> {
        Ok(self
            .rpc
            .watch_request(pb::WatchRequestRequest { id: id.to_string() })
            .await?
            .into_inner())
    }

    /// The daemon key D (to check audit checkpoints).
    pub fn daemon_key(&self) -> &VerifyingKey {
        &self.daemon_key
    }
}

/// Parses one streamed audit record, checking its seq matches its JSON.
pub fn parse_record(r: &pb::AuditRecord) -> Result<AuditEntry> {
    let e: AuditEntry = serde_json::from_str(&r.json).map_err(|e| {
        ClientError::Untrusted(format!("audit entry {} is not valid JSON: {e}", r.seq))
    })?;
    if e.seq != r.seq {
        return Err(ClientError::Untrusted(format!(
            "audit record {} carries entry {}",
            r.seq, e.seq
        )));
    }
    Ok(e)
}

/// Name of a request state.
pub fn state_name(s: i32) -> &'static str {
    match pb::RequestState::try_from(s) {
        Ok(pb::RequestState::Collecting) => "collecting",
        Ok(pb::RequestState::Unlocked) => "unlocked",
        Ok(pb::RequestState::Expired) => "expired",
        Ok(pb::RequestState::Cancelled) => "cancelled",
        Ok(pb::RequestState::DrillPassed) => "drill_passed",
        Ok(pb::RequestState::ChangeApplied) => "change_applied",
        Ok(pb::RequestState::ChangeDealt) => "change_dealt",
        _ => "unknown",
    }
}

/// Decrypts a share file with `me`'s key and checks its shape, without any
/// daemon: the offline half of `share check` and of every submission.
pub fn open_share_file(me: &Identity, path: &std::path::Path) -> Result<ShareFile> {
    let p = path.display().to_string();
    let ct = std::fs::read(path).map_err(|e| ClientError::Io {
        path: p.clone(),
        source: e,
    })?;
    let plain = envelope::decrypt(me.age(), &ct).map_err(|e| ClientError::ShareFile {
        path: p.clone(),
        why: e.to_string(),
    })?;
    ShareFile::parse(&plain).map_err(|e| ClientError::ShareFile {
        path: p,
        why: e.to_string(),
    })
}
