//! The readiness figures on the metrics listener, read from the readiness
//! report at scrape time (one small table, whatever the history).

use std::fmt::Write;

use crate::engine::readiness::Report;

/// Appends the readiness gauges of `r` to `o`.
pub fn render(o: &mut String, r: &Report) {
    let head = |o: &mut String, name: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
    };
    head(
        o,
        "breakglass_quorum_proven_custodians",
        "Custodians who proved their share (attestation) in the current epoch within attest_every.",
    );
    let _ = writeln!(o, "breakglass_quorum_proven_custodians {}", r.proven);
    head(o, "breakglass_quorum_threshold", "Shares needed to unlock.");
    let _ = writeln!(o, "breakglass_quorum_threshold {}", r.threshold);
    head(
        o,
        "breakglass_quorum_ready",
        "1 if at least a threshold of custodians are proven (ready), 0 if at risk.",
    );
    let _ = writeln!(o, "breakglass_quorum_ready {}", u8::from(r.ready));
    head(
        o,
        "breakglass_custodian_proven",
        "1 if the custodian attested in the current epoch within attest_every.",
    );
    for c in &r.custodians {
        let _ = writeln!(
            o,
            "breakglass_custodian_proven{{custodian=\"{}\"}} {}",
            c.id,
            u8::from(c.proven)
        );
    }
    head(
        o,
        "breakglass_custodian_attestation_age_seconds",
        "Seconds since the custodian's last attestation in the current epoch (absent: never).",
    );
    for c in &r.custodians {
        let current = c.proofs.last_proof(r.epoch);
        if let Some(at) = current {
            let _ = writeln!(
                o,
                "breakglass_custodian_attestation_age_seconds{{custodian=\"{}\"}} {}",
                c.id,
                r.now.saturating_sub(at)
            );
        }
    }
    if let Some(at) = r.last_drill.as_ref().and_then(|d| d.at) {
        head(
            o,
            "breakglass_drill_age_seconds",
            "Seconds since the last passed live drill in the current epoch (absent: never).",
        );
        let _ = writeln!(
            o,
            "breakglass_drill_age_seconds {}",
            r.now.saturating_sub(at)
        );
        head(
            o,
            "breakglass_last_drill_quorum_seconds",
            "The last passed live drill's time from opening to quorum.",
        );
        let q = r
            .last_drill
            .as_ref()
            .and_then(|d| d.seconds_to_quorum)
            .unwrap_or(0);
        let _ = writeln!(o, "breakglass_last_drill_quorum_seconds {q}");
    }
}
