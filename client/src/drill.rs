//! `breakglass drill`: a whole quorum unlock with no set-up.
//!
//! It generates custodian and commander keys, runs the key ceremony into a
//! temporary directory, starts the real daemon server code on loopback TLS
//! (self-signed certificate, pinned by fingerprint), opens a request, submits
//! shares one by one (checking that fewer than the threshold give nothing),
//! (after every custodian proved her share with an attestation), fetches the
//! credential, verifies it offline against the authority key the
//! ceremony printed, checks that a tampered token fails, verifies the audit
//! chain, scrapes the daemon's Prometheus metrics for the shares and the
//! unlock, reads the readiness report, then rehearses a rekey (DESIGN.md
//! "Epochs": one custodian leaves, one joins, the threshold changes; the new
//! shares unlock and the credential verifies against the same A), and shuts down.
//! Every step is timed; the drill passes only if every step held.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use breakglass_daemon::{self as daemon, system_clock, Daemon};

use crate::api::{unix_now, Client};
use crate::connect::{ConnectOptions, Trust};
use crate::identity::Identity;
use breakglass_formats::keys::AuthorityPublic;
use breakglass_formats::verify::{verify_certificate, verify_token};

mod metrics;
mod readiness;
mod rekey;
use readiness::attest_all;

/// Drill settings.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// Custodians to generate.
    pub custodians: u8,
    /// Shares needed.
    pub threshold: u8,
    /// Credential TTL asked for, seconds.
    pub ttl_seconds: u64,
}

impl Default for DrillOptions {
    fn default() -> Self {
        DrillOptions {
            custodians: 5,
            threshold: 3,
            ttl_seconds: 900,
        }
    }
}

/// One timed step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What was done.
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// Milliseconds taken.
    pub ms: f64,
    /// What happened.
    pub detail: String,
}

/// Claims of the minted credential, as verified offline.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CredentialSummary {
    /// `sub`.
    pub subject: String,
    /// `scope`.
    pub scope: String,
    /// `approvers`.
    pub approvers: Vec<String>,
    /// `iat`.
    pub issued_at: u64,
    /// `exp`.
    pub expires_at: u64,
    /// SSH certificate key id.
    pub ssh_key_id: String,
    /// SSH certificate principals.
    pub ssh_principals: Vec<String>,
}

/// The drill's result.
#[derive(Debug, Clone, Serialize, Default)]
pub struct DrillReport {
    /// True only if every step held.
    pub ok: bool,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Daemon address.
    pub daemon_addr: String,
    /// Daemon id.
    pub daemon_id: String,
    /// Request id.
    pub request_id: String,
    /// A as PASERK.
    pub authority: String,
    /// Shares needed / custodians.
    pub threshold: String,
    /// The verified credential.
    pub credential: CredentialSummary,
    /// Total milliseconds.
    pub total_ms: f64,
    /// Audit events the drill produced (`#seq kind actor`).
    pub audit_events: Vec<String>,
}

struct Recorder {
    report: DrillReport,
    start: Instant,
}

impl Recorder {
    fn step<T>(
        &mut self,
        name: &str,
        started: Instant,
        r: Result<(T, String), String>,
    ) -> Option<T> {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match r {
            Ok((v, detail)) => {
                self.report.steps.push(Step {
                    name: name.into(),
                    ok: true,
                    ms,
                    detail,
                });
                Some(v)
            }
            Err(detail) => {
                self.report.steps.push(Step {
                    name: name.into(),
                    ok: false,
                    ms,
                    detail,
                });
                None
            }
        }
    }
}

/// The drill policy's clock skew: how far the credential's start is backdated.
const DRILL_CLOCK_SKEW: u64 = 120;

fn policy_toml(custodians: &[Identity], commander: &Identity, k: u8) -> String {
    let members: Vec<(String, &Identity)> = custodians
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("custodian-{}", i + 1), c))
        .collect();
    policy_toml_of(&members, commander, k)
}

/// The drill policy for these custodians (id, key), threshold `k`.
fn policy_toml_of(custodians: &[(String, &Identity)], commander: &Identity, k: u8) -> String {
    let mut s = format!(
        "threshold = {k}\ncollection_window = \"10m\"\nmax_ttl = \"1h\"\nclock_skew = \"{DRILL_CLOCK_SKEW}s\"\n\n[[scopes]]\nname = \"drill\"\nprincipals = [\"breakglass-drill\"]\nmax_ttl = \"30m\"\n\n"
    );
    for (id, c) in custodians {
        let n = id.trim_start_matches("custodian-");
        s.push_str(&format!(
            "[[custodians]]\nid = \"{id}\"\nname = \"Drill custodian {n}\"\nssh_key = \"{}\"\n\n",
            c.ssh_public()
        ));
    }
    s.push_str(&format!(
        "[[commanders]]\nid = \"commander\"\nname = \"Drill commander\"\nssh_key = \"{}\"\nscopes = [\"drill\"]\n",
        commander.ssh_public()
    ));
    s
}

/// Runs the drill. Never panics on a failed step: the report says what failed.
pub async fn run(opts: &DrillOptions) -> DrillReport {
    let mut rec = Recorder {
        report: DrillReport::default(),
        start: Instant::now(),
    };
    rec.report.threshold = format!("{} of {}", opts.threshold, opts.custodians);
    let result = drive(opts, &mut rec).await;
    if let Err(e) = result {
        rec.report.steps.push(Step {
            name: "drill".into(),
            ok: false,
            ms: 0.0,
            detail: e,
        });
    }
    rec.report.ok = !rec.report.steps.is_empty() && rec.report.steps.iter().all(|s| s.ok);
    rec.report.total_ms = rec.start.elapsed().as_secs_f64() * 1000.0;
    rec.report
}

async fn drive(opts: &DrillOptions, rec: &mut Recorder) -> Result<(), String> {
    let k = opts.threshold;

    let t = Instant::now();
    let custodians: Vec<Identity> = (0..opts.custodians).map(|_| Identity::generate()).collect();
    let commander = Identity::generate();
    rec.step(
        "generate keys",
        t,
        Ok((
            (),
            format!(
                "{} custodian keys and 1 commander key (ssh-ed25519)",
                opts.custodians
            ),
        )),
    );

    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let state = dir.path().join("state");
    let shares = dir.path().join("shares");
    let t = Instant::now();
    let cer = daemon::init(
        &policy_toml(&custodians, &commander, k),
        &state,
        &shares,
        unix_now(),
    )
    .map_err(|e| e.to_string());
    let Some(cer) = rec.step(
        "key ceremony",
        t,
        cer.map(|c| {
            let d = format!(
                "{} of {} shares written, authority {}",
                c.threshold,
                c.share_files.len(),
                c.authority.paserk()
            );
            (c, d)
        }),
    ) else {
        return Ok(());
    };
    rec.report.authority = cer.authority.paserk();
    rec.report.daemon_id = cer.daemon_id.clone();

    let t = Instant::now();
    let started = async {
        let daemon = Arc::new(Daemon::start(&state, system_clock()).map_err(|e| e.to_string())?);
        let tls = daemon::load_or_create(&state, None, None, &[]).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let fp = tls.fingerprint.clone();
        let kept = daemon.clone();
        let handle = tokio::spawn(async move {
            daemon::run(daemon, listener, &tls, async {
                let _ = stop_rx.await;
            })
            .await
        });
        Ok::<_, String>((addr, fp, stop_tx, handle, kept))
    }
    .await;
    let Some((addr, fp, stop_tx, handle, daemon)) = rec.step(
        "start daemon",
        t,
        started.map(|(a, fp, s, h, k)| {
            let d = format!("loopback TLS on {a}, self-signed certificate {fp}");
            ((a, fp, s, h, k), d)
        }),
    ) else {
        return Ok(());
    };
    rec.report.daemon_addr = addr.to_string();
    let metrics_addr = metrics::start(&daemon).await;

    let outcome = unlock(
        opts,
        rec,
        &cer,
        &custodians,
        &commander,
        &addr.to_string(),
        &fp,
    )
    .await;
    if outcome.is_ok() && rec.report.steps.iter().all(|s| s.ok) {
        let note = format!(
            "drill {} unlocked request {}",
            rec.report.threshold, rec.report.request_id
        );
        let _ = daemon.record_drill(&note);
        let t = Instant::now();
        let scraped = match metrics_addr {
            Ok(a) => metrics::check(a, opts.threshold).await,
            Err(e) => Err(e),
        };
        rec.step("scrape metrics", t, scraped.map(|d| ((), d)));
        if let Ok(mut client) = connect(&addr.to_string(), &fp).await {
            rekey::rekey_phase(
                rec,
                &mut client,
                &cer,
                &custodians,
                &commander,
                opts.threshold,
            )
            .await;
        }
        audit_step(rec, &addr.to_string(), &fp).await;
    }
    drop(daemon);

    let t = Instant::now();
    let _ = stop_tx.send(());
    let stopped = match handle.await {
        Ok(Ok(())) => Ok(((), "daemon stopped; memory-only secrets wiped".to_string())),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    rec.step("shut down daemon", t, stopped);
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn unlock(
    opts: &DrillOptions,
    rec: &mut Recorder,
    cer: &daemon::CeremonyOutput,
    custodians: &[Identity],
    commander: &Identity,
    addr: &str,
    fp: &str,
) -> Result<(), String> {
    let t = Instant::now();
    let trust = Trust::fingerprint(fp).map_err(|e| e.to_string())?;
    let connected = Client::connect(&ConnectOptions {
        addr: addr.to_string(),
        trust,
        server_name: None,
        client_cert: None,
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|c| {
        if c.info().authority_public_key.as_slice() == cer.authority.0.as_bytes() {
            let d = format!(
                "pinned {fp}; daemon {} serves the ceremony's authority",
                c.info().daemon_id
            );
            Ok((c, d))
        } else {
            Err("the daemon reports another authority key than the ceremony made".into())
        }
    });
    let Some(mut client) = rec.step("connect over TLS", t, connected) else {
        return Ok(());
    };

    if !attest_all(rec, &mut client, cer, custodians).await {
        return Ok(());
    }

    let t = Instant::now();
    let opened = client
        .open(
            commander,
            None,
            "drill",
            "breakglass drill: prove the quorum unlock works",
            opts.ttl_seconds,
            &commander.ssh_public(),
        )
        .await
        .map_err(|e| e.to_string())
        .map(|v| {
            let d = format!(
                "{} scope {} ttl {}s, deadline in {}s",
                v.id,
                v.scope,
                v.ttl_seconds,
                v.deadline.saturating_sub(v.opened_at)
            );
            (v, d)
        });
    let Some(view) = rec.step("open request", t, opened) else {
        return Ok(());
    };
    rec.report.request_id = view.id.clone();

    for (i, c) in custodians
        .iter()
        .take(usize::from(opts.threshold))
        .enumerate()
    {
        let path = cer
            .share_files
            .get(i)
            .map(|(_, p)| p.clone())
            .ok_or("missing share file")?;
        let name = format!("share {} of {}", i + 1, opts.threshold);
        let t = Instant::now();
        let r = async {
            let share = client
                .read_share_file(c, &path)
                .map_err(|e| e.to_string())?;
            client
                .submit(c, None, &view, &share)
                .await
                .map_err(|e| e.to_string())
        }
        .await
        .map(|p| {
            let who = share_owner(&cer.share_files, i);
            let d = format!(
                "{who} approved: {}/{}{}",
                p.accepted,
                p.threshold,
                if p.unlocked {
                    " · quorum reached, credential minted"
                } else {
                    ""
                }
            );
            (p, d)
        });
        let Some(progress) = rec.step(&name, t, r) else {
            return Ok(());
        };
        let last = i + 1 == usize::from(opts.threshold);
        if progress.unlocked != last {
            rec.step::<()>(
                &name,
                t,
                Err(format!(
                    "unlocked = {} after {} shares",
                    progress.unlocked,
                    i + 1
                )),
            );
            return Ok(());
        }
        if i + 2 == usize::from(opts.threshold) {
            // Invariant 2: below the threshold there is no credential.
            let t = Instant::now();
            let r = match client.fetch(commander, None, &view.id).await {
                Err(crate::ClientError::Status(s))
                    if s.code() == tonic::Code::FailedPrecondition =>
                {
                    Ok((
                        (),
                        format!(
                            "{} of {} shares: fetch refused ({})",
                            i + 1,
                            opts.threshold,
                            s.message()
                        ),
                    ))
                }
                Err(e) => Err(format!("unexpected error: {e}")),
                Ok(_) => Err("a credential was returned below the threshold".into()),
            };
            if rec.step("below threshold: no credential", t, r).is_none() {
                return Ok(());
            }
        }
    }

    let t = Instant::now();
    let fetched = client
        .fetch(commander, None, &view.id)
        .await
        .map_err(|e| e.to_string())
        .map(|b| {
            let d = format!(
                "{} minted; decrypted with the commander's key",
                b.kinds().join(" + ")
            );
            (b, d)
        });
    let Some(bundle) = rec.step("fetch credential", t, fetched) else {
        return Ok(());
    };

    let t = Instant::now();
    let token = bundle.paseto.clone().unwrap_or_default();
    let verified = check_token(&cer.authority, &token, &view, opts);
    let Some(v) = rec.step("verify token offline", t, verified) else {
        return Ok(());
    };
    rec.report.credential = CredentialSummary {
        subject: v.subject,
        scope: v.scope,
        approvers: v.approvers,
        issued_at: v.issued_at,
        expires_at: v.expires_at,
        ssh_key_id: String::new(),
        ssh_principals: Vec::new(),
    };

    let t = Instant::now();
    let cert = bundle.ssh_certificate.clone().unwrap_or_default();
    let checked = check_certificate(
        &cer.authority,
        &cert,
        commander,
        &view,
        &rec.report.credential,
    );
    let Some(info) = rec.step("verify ssh certificate offline", t, checked) else {
        return Ok(());
    };
    rec.report.credential.ssh_key_id = info.key_id;
    rec.report.credential.ssh_principals = info.principals;

    let t = Instant::now();
    let mut tampered = token.into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8_lossy(&tampered).to_string();
    let r = match verify_token(&cer.authority, &tampered, unix_now()) {
        Err(e) => Ok(((), format!("rejected: {e}"))),
        Ok(_) => Err("a tampered token verified".into()),
    };
    rec.step("tampered token rejected", t, r);

    let t = Instant::now();
    let r = match tamper_certificate(&cert)
        .map(|c| verify_certificate(&cer.authority, &c, unix_now()))
    {
        Some(Err(e)) => Ok(((), format!("rejected: {e}"))),
        Some(Ok(_)) => Err("a tampered certificate verified".into()),
        None => Err("the certificate could not be decoded to tamper with".into()),
    };
    rec.step("tampered certificate rejected", t, r);
    readiness::live_drill_step(rec, &mut client, cer, custodians, commander, opts.threshold).await;
    readiness::report_step(rec, &mut client).await;
    Ok(())
}

/// Exports the daemon's audit log over the API, verifies the chain and checkpoints, and lists the events.
/// A client of the drill's daemon, pinned to its certificate.
async fn connect(addr: &str, fp: &str) -> Result<Client, String> {
    let trust = Trust::fingerprint(fp).map_err(|e| e.to_string())?;
    Client::connect(&ConnectOptions {
        addr: addr.to_string(),
        trust,
        server_name: None,
        client_cert: None,
    })
    .await
    .map_err(|e| e.to_string())
}

async fn audit_step(rec: &mut Recorder, addr: &str, fp: &str) {
    let t = Instant::now();
    let r = async {
        let mut c = connect(addr, fp).await?;
        let entries = c.audit_export(1).await.map_err(|e| e.to_string())?;
        let id = c.info().daemon_id.clone();
        let report = breakglass_formats::audit::verify_log(&entries, Some((c.daemon_key(), &id)))
            .map_err(|e| e.to_string())?;
        if report.checkpoints == 0 {
            return Err("no checkpoint signed by the daemon key".to_string());
        }
        Ok::<_, String>((entries, report))
    }
    .await
    .map(|(entries, report)| {
        let d = format!(
            "{} entries hash-chained, {} checkpoints signed by the daemon key, head {}",
            report.entries,
            report.checkpoints,
            &report.head.unwrap_or_default()[..16]
        );
        (entries, d)
    });
    if let Some(entries) = rec.step("verify audit chain", t, r) {
        rec.report.audit_events = entries
            .iter()
            .map(|e| format!("#{} {} {}", e.seq, e.event.kind(), e.actor))
            .collect();
    }
}

/// Flips one bit in the middle of the certificate's signed blob.
fn tamper_certificate(line: &str) -> Option<String> {
    use base64::Engine;
    let mut parts: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    let mut blob = base64::engine::general_purpose::STANDARD
        .decode(parts.get(1)?)
        .ok()?;
    let i = blob.len() / 2;
    blob[i] ^= 1;
    parts[1] = base64::engine::general_purpose::STANDARD.encode(blob);
    Some(parts.join(" "))
}

fn check_certificate(
    a: &AuthorityPublic,
    line: &str,
    commander: &Identity,
    view: &breakglass_proto::pb::RequestView,
    token: &CredentialSummary,
) -> Result<(breakglass_formats::sshcert::CertInfo, String), String> {
    let info = verify_certificate(a, line, unix_now()).map_err(|e| e.to_string())?;
    let want_id = format!("breakglass:{}:commander", view.id);
    if info.key_id != want_id || info.principals != ["breakglass-drill"] {
        return Err(format!(
            "key id {} principals {:?} do not match the request",
            info.key_id, info.principals
        ));
    }
    if info.valid_before != token.expires_at {
        return Err(format!(
            "certificate expires at {}, token at {}",
            info.valid_before, token.expires_at
        ));
    }
    let cert = ssh_key::Certificate::from_openssh(line).map_err(|e| e.to_string())?;
    let subject =
        ssh_key::PublicKey::from_openssh(&commander.ssh_public()).map_err(|e| e.to_string())?;
    if cert.public_key() != subject.key_data() {
        return Err("the certificate is not for the commander's key".into());
    }
    let d = format!(
        "signed by authority as SSH CA; key id {} · principals {} · valid {}s (incl. {}s clock skew)",
        info.key_id,
        info.principals.join(","),
        info.valid_before.saturating_sub(info.valid_after),
        token.issued_at.saturating_sub(info.valid_after)
    );
    Ok((info, d))
}

fn share_owner(files: &[(String, std::path::PathBuf)], i: usize) -> String {
    files.get(i).map(|(id, _)| id.clone()).unwrap_or_default()
}

fn check_token(
    a: &AuthorityPublic,
    token: &str,
    view: &breakglass_proto::pb::RequestView,
    opts: &DrillOptions,
) -> Result<(breakglass_formats::credential::VerifiedToken, String), String> {
    let v = verify_token(a, token, unix_now()).map_err(|e| e.to_string())?;
    if v.subject != "commander" || v.scope != "drill" || v.request_id != view.id {
        return Err(format!(
            "claims sub={} scope={} jti={} do not match the request",
            v.subject, v.scope, v.request_id
        ));
    }
    if v.approvers.len() != usize::from(opts.threshold) {
        return Err(format!(
            "{} approvers in the token, expected {}",
            v.approvers.len(),
            opts.threshold
        ));
    }
    // iat and nbf are backdated by the policy's clock skew, like the certificate.
    if v.expires_at.saturating_sub(v.issued_at) > opts.ttl_seconds + DRILL_CLOCK_SKEW {
        return Err(format!(
            "token lives {}s, more than the {}s asked plus {DRILL_CLOCK_SKEW}s of clock skew",
            v.expires_at - v.issued_at,
            opts.ttl_seconds
        ));
    }
    let d = format!(
        "signature by authority ok; sub={} scope={} approvers={} expires in {}s",
        v.subject,
        v.scope,
        v.approvers.join(","),
        v.expires_at.saturating_sub(unix_now())
    );
    Ok((v, d))
}
