//! `breakglass readiness`: who has proven their share lately, and whether a
//! threshold of custodians has (the quorum is *ready*) or not (*at risk*).

use std::process::ExitCode;

use serde::Serialize;

use breakglass_proto::pb;

use crate::cli::Conn;
use crate::cmd::conn::connect;
use crate::output::shown;

/// Exit status of `--require-ready` when the quorum is at risk.
const AT_RISK: u8 = 3;

/// `readiness --json`.
#[derive(Serialize)]
struct ReadinessJson {
    daemon_id: String,
    epoch: u64,
    generated_at: Option<String>,
    generated_at_unix: u64,
    /// `ready` or `at_risk`.
    status: &'static str,
    ready: bool,
    proven: u32,
    threshold: u32,
    attest_every_seconds: u64,
    drill_every_seconds: u64,
    stale: Vec<String>,
    open_requests: Vec<String>,
    last_drill_at: Option<String>,
    last_drill_at_unix: Option<u64>,
    last_drill_request_id: Option<String>,
    last_drill_seconds_to_quorum: Option<u64>,
    drill_due_at: Option<String>,
    drill_due_at_unix: u64,
    custodians: Vec<CustodianJson>,
}

#[derive(Serialize)]
struct CustodianJson {
    id: String,
    name: String,
    proven: bool,
    last_attested_at: Option<String>,
    last_attested_at_unix: Option<u64>,
    last_approved_at: Option<String>,
    last_approved_at_unix: Option<u64>,
    attest_due_at: Option<String>,
    attest_due_at_unix: u64,
    last_drill_at: Option<String>,
    last_drill_at_unix: Option<u64>,
}

fn when(t: u64) -> Option<String> {
    (t != 0)
        .then(|| breakglass_formats::time::rfc3339(t))
        .flatten()
}

fn days(s: u64) -> String {
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else {
        format!("{s}s")
    }
}

/// Prints the report; with `require_ready`, an at-risk quorum exits with 3.
pub(crate) async fn run(conn: &Conn, json: bool, require_ready: bool) -> anyhow::Result<ExitCode> {
    let mut c = connect(conn).await?;
    let r = c.readiness().await?;
    if json {
        crate::json::print(&to_json(&r))?;
    } else {
        print(&r);
    }
    Ok(if require_ready && !r.ready {
        ExitCode::from(AT_RISK)
    } else {
        ExitCode::SUCCESS
    })
}

fn to_json(r: &pb::Readiness) -> ReadinessJson {
    ReadinessJson {
        daemon_id: r.daemon_id.clone(),
        epoch: r.epoch,
        generated_at: when(r.generated_at),
        generated_at_unix: r.generated_at,
        status: if r.ready { "ready" } else { "at_risk" },
        ready: r.ready,
        proven: r.proven,
        threshold: r.threshold,
        attest_every_seconds: r.attest_every_seconds,
        drill_every_seconds: r.drill_every_seconds,
        stale: r.stale.clone(),
        open_requests: r.open_requests.clone(),
        last_drill_at: when(r.last_drill_at),
        last_drill_at_unix: (r.last_drill_at != 0).then_some(r.last_drill_at),
        last_drill_request_id: (!r.last_drill_request_id.is_empty())
            .then(|| r.last_drill_request_id.clone()),
        last_drill_seconds_to_quorum: (r.last_drill_at != 0)
            .then_some(r.last_drill_seconds_to_quorum),
        drill_due_at: when(r.drill_due_at),
        drill_due_at_unix: r.drill_due_at,
        custodians: r
            .custodians
            .iter()
            .map(|cu| CustodianJson {
                id: cu.id.clone(),
                name: cu.name.clone(),
                proven: cu.proven,
                last_attested_at: when(cu.last_attested_at),
                last_attested_at_unix: (cu.last_attested_at != 0).then_some(cu.last_attested_at),
                last_approved_at: when(cu.last_approved_at),
                last_approved_at_unix: (cu.last_approved_at != 0).then_some(cu.last_approved_at),
                attest_due_at: when(cu.attest_due_at),
                attest_due_at_unix: cu.attest_due_at,
                last_drill_at: when(cu.last_drill_at),
                last_drill_at_unix: (cu.last_drill_at != 0).then_some(cu.last_drill_at),
            })
            .collect(),
    }
}

fn print(r: &pb::Readiness) {
    let every = days(r.attest_every_seconds);
    println!(
        "daemon {} epoch {}, {}",
        shown(&r.daemon_id),
        r.epoch,
        when(r.generated_at).unwrap_or_default()
    );
    if r.ready {
        println!(
            "READY: {} of {} custodians proved their share within {every}; {} are needed",
            r.proven,
            r.custodians.len(),
            r.threshold
        );
    } else {
        println!(
            "AT RISK: {} of {} custodians proved their share within {every}, but {} are needed",
            r.proven,
            r.custodians.len(),
            r.threshold
        );
    }
    if !r.stale.is_empty() {
        println!(
            "not proven within {every}: {} (each runs `breakglass share attest --share FILE`)",
            shown(&r.stale.join(", "))
        );
    }
    println!();
    for cu in &r.custodians {
        let mark = if cu.proven { "proven" } else { "STALE " };
        let name = if cu.name.is_empty() {
            String::new()
        } else {
            format!(" ({})", shown(&cu.name))
        };
        println!(
            "  {mark} {}{name}: attested {}, approved {}, drilled {}, next due {}",
            shown(&cu.id),
            when(cu.last_attested_at).unwrap_or_else(|| "never".into()),
            when(cu.last_approved_at).unwrap_or_else(|| "never".into()),
            when(cu.last_drill_at).unwrap_or_else(|| "never".into()),
            when(cu.attest_due_at).unwrap_or_default()
        );
    }
    println!();
    match when(r.last_drill_at) {
        Some(at) => println!(
            "last live drill: {} at {at}, quorum in {}s; next due {}",
            shown(&r.last_drill_request_id),
            r.last_drill_seconds_to_quorum,
            when(r.drill_due_at).unwrap_or_default()
        ),
        None => println!(
            "no live drill yet in this epoch (`breakglass drill --live --reason …`); due {}",
            when(r.drill_due_at).unwrap_or_default()
        ),
    }
    if r.open_requests.is_empty() {
        println!("no request is collecting shares");
    } else {
        println!(
            "collecting shares now: {}",
            shown(&r.open_requests.join(", "))
        );
    }
}
