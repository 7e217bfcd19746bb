//! Invariant 1 (no secret at rest): after a full unlock and a clean stop, no
//! file in the state directory and no line the daemon or the CLI printed
//! contains R, S, A's private seed, or any share, raw or in hex.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{load, share_bytes, Fixture};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_root_seed_authority_or_share_bytes_on_disk_or_in_logs() {
    let mut fx = Fixture::new(5, 3, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(&ic, None, "prod-ssh", "invariant 1", 600, &ic.ssh_public())
        .await
        .unwrap();
    let mut shares = Vec::new();
    for i in 0..5 {
        shares.push(share_bytes(
            &client,
            &fx.custodian_key(i),
            &fx.share_file(&fx.keys.custodians[i].0),
        ));
    }
    // Unlock through the CLI so its output is checked too.
    let mut cli_output = Vec::new();
    for i in 0..3 {
        let (ok, out, err) = fx.cli(
            &fx.custodian_key(i),
            &[
                "share",
                "submit",
                &r.id,
                "--share",
                fx.share_file(&fx.keys.custodians[i].0).to_str().unwrap(),
                "--yes",
            ],
        );
        assert!(ok, "{out}{err}");
        cli_output.extend(out.into_bytes());
        cli_output.extend(err.into_bytes());
    }
    let (ok, out, err) = fx.cli(
        &fx.commander_key("ic"),
        &[
            "credential",
            "fetch",
            &r.id,
            "--out",
            fx.dir.path().join("cred.json").to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    cli_output.extend(out.into_bytes());
    cli_output.extend(err.into_bytes());
    let authority = client.info().authority_public_key.clone();
    assert!(fx.stop());

    // Rebuild R from 3 shares independently of the daemon, then S from the seal, then A's seed.
    let sealed = common::sealed(&fx.state);
    let common::Rebuilt {
        root,
        k_r,
        seed,
        a_seed,
    } = common::rebuild_secrets(&sealed, &shares[..3], &authority);

    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("R".into(), root.clone()),
        ("S".into(), seed.clone()),
        ("A seed".into(), a_seed.to_vec()),
        ("K_R".into(), k_r.to_vec()),
    ];
    for (i, s) in shares.iter().enumerate() {
        secrets.push((format!("share {}", i + 1), s.clone()));
        // The y part alone, in case a share is written without its x.
        secrets.push((format!("share {} y", i + 1), s[1..].to_vec()));
    }
    let hexed: Vec<(String, Vec<u8>)> = secrets
        .iter()
        .map(|(n, s)| (format!("{n} (hex)"), hex::encode(s).into_bytes()))
        .collect();
    secrets.extend(hexed);

    let mut places = fx.all_files(&fx.state);
    for entry in std::fs::read_dir(fx.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("daemon-")
        {
            places.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    places.push(("CLI output".into(), cli_output));
    assert!(places.iter().any(|(p, _)| p.ends_with("state.redb")));
    assert!(
        places
            .iter()
            .any(|(p, b)| p.to_string_lossy().ends_with(".stderr") && !b.is_empty()),
        "daemon logs were captured"
    );
    for (path, bytes) in &places {
        for (name, s) in &secrets {
            assert!(!contains(bytes, s), "{name} found in {}", path.display());
        }
    }

    // The scan itself works: the share file plaintext would be found if it were written.
    let planted = [
        b"log line ".as_slice(),
        &hex::encode(&shares[0]).into_bytes(),
    ]
    .concat();
    assert!(contains(&planted, &hex::encode(&shares[0]).into_bytes()));
}
