//! `breakglass drill`: a whole quorum unlock against a temporary in-process
//! daemon on loopback TLS. Only a default build has it: a custodian's build
//! (`--no-default-features`) links no daemon.

use std::process::ExitCode;

/// Runs the drill and prints its report; the exit code says whether it passed.
#[cfg(feature = "drill")]
pub(crate) async fn run(json: bool, custodians: u8, threshold: u8) -> anyhow::Result<ExitCode> {
    use breakglass_client::drill::{self, DrillOptions};
    let r = drill::run(&DrillOptions {
        custodians,
        threshold,
        ..DrillOptions::default()
    })
    .await;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "breakglass drill: {} quorum unlock on loopback TLS",
            r.threshold
        );
        for s in &r.steps {
            println!(
                "  {} {:<32} {:>8.2} ms  {}",
                if s.ok { "ok  " } else { "FAIL" },
                s.name,
                s.ms,
                s.detail
            );
        }
        if !r.audit_events.is_empty() {
            println!("  audit events: {}", r.audit_events.join(" · "));
        }
        println!(
            "{} in {:.1} ms · request {} · authority {}",
            if r.ok { "PASS" } else { "FAIL" },
            r.total_ms,
            r.request_id,
            r.authority
        );
    }
    Ok(if r.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A custodian's build (`--no-default-features`) carries no daemon, so no drill.
#[cfg(not(feature = "drill"))]
pub(crate) async fn run(_json: bool, _custodians: u8, _threshold: u8) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this breakglass was built without the `drill` feature (a custodian's build links no daemon); use a default build to run drills")
}
