//! The key ceremony (`breakglassd init`): local, offline, no network API.
//!
//! Reads the policy; generates S, the daemon key D and the ids; deals epoch 1
//! (`crypto::deal`: a new R split among the custodians, S sealed under K_R,
//! the split proven to rebuild R and open the seal, one age-encrypted share
//! file per custodian); writes the share files, then the state; prints A. R
//! and S are wiped when this returns.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use rand_core::{OsRng, RngCore};

use crate::crypto::authority::AuthorityKey;
use crate::crypto::deal::{deal, Dealer};
use crate::crypto::secret::AuthoritySeed;
use crate::engine::event::{Event, Record};
use crate::engine::policy::Policy;
use crate::engine::share::Lineage;
use crate::error::{Error, Result};
use crate::store::{Genesis, Store, DAEMON_KEY_FILE, DB_FILE};
use breakglass_formats::keys::AuthorityPublic;
use breakglass_proto::signing::FIRST_EPOCH;

/// What the ceremony produced, for printing.
#[derive(Debug, Clone)]
pub struct CeremonyOutput {
    /// Daemon id.
    pub daemon_id: String,
    /// Ceremony id.
    pub ceremony_id: String,
    /// Authority public key.
    pub authority: AuthorityPublic,
    /// Share files written, by custodian id.
    pub share_files: Vec<(String, PathBuf)>,
    /// Shares needed.
    pub threshold: u8,
}

fn random_id() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Writes a file that must not exist yet, with mode 0600 on Unix.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// Creates a directory (and parents) with mode 0700 on Unix.
pub fn create_private_dir(path: &Path) -> Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path).map_err(|e| Error::io(path, e))
}

/// Runs the ceremony. `now` is the ceremony time for the audit log.
pub fn init(
    policy_text: &str,
    state_dir: &Path,
    shares_out: &Path,
    now: u64,
) -> Result<CeremonyOutput> {
    let policy = Policy::from_toml(policy_text)?;
    if state_dir.join(DB_FILE).exists() || state_dir.join(DAEMON_KEY_FILE).exists() {
        return Err(Error::AlreadyInitialised {
            path: state_dir.to_path_buf(),
        });
    }
    let k = policy.threshold;
    let daemon_id = random_id();
    let ceremony_id = random_id();
    let digest = policy.digest()?;

    // D exists before the share files: each file carries D's signature over
    // its statement, so a custodian can prove offline that it is genuine.
    let d = SigningKey::generate(&mut OsRng);
    let seed = AuthoritySeed::generate();
    let authority = AuthorityPublic(AuthorityKey::derive(&seed).public());
    let dealt = deal(
        &seed,
        &policy,
        &digest,
        Lineage {
            ceremony_id: &ceremony_id,
            epoch: FIRST_EPOCH,
        },
        &Dealer {
            daemon_id: &daemon_id,
            key: &d,
            authority: authority.0.as_bytes(),
        },
    )?;
    drop(seed);

    create_private_dir(shares_out)?;
    let mut files = Vec::new();
    let mut planned = Vec::new();
    for share in &dealt.shares {
        let path = shares_out.join(format!("{}.share", share.custodian));
        if path.exists() {
            return Err(Error::io(
                &path,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "share file exists; refusing to overwrite it",
                ),
            ));
        }
        planned.push((share.custodian.clone(), path, &share.file));
    }
    let commitments = dealt.commitments();
    let sealed = dealt.seal.clone();

    create_private_dir(state_dir)?;
    let written = (|| -> Result<()> {
        for (id, path, ct) in &planned {
            write_new_private(path, ct)?;
            files.push((id.clone(), path.clone()));
        }
        write_new_private(
            &state_dir.join(DAEMON_KEY_FILE),
            hex::encode(d.to_bytes()).as_bytes(),
        )?;
        let integrity = crate::crypto::integrity::sign(
            crate::crypto::integrity::statement(
                &daemon_id,
                &ceremony_id,
                FIRST_EPOCH,
                &digest,
                &sealed,
                &commitments,
                &authority.0.to_bytes(),
            ),
            &d,
        )?;
        let g = Genesis {
            daemon_id: daemon_id.clone(),
            ceremony_id: ceremony_id.clone(),
            epoch: FIRST_EPOCH,
            since: now,
            policy: policy.clone(),
            seal: sealed.clone(),
            authority_public: authority.0.to_bytes(),
            commitments,
            integrity,
        };
        let rec = Record {
            time: now,
            actor: "operator".into(),
            request_id: None,
            event: Event::Ceremony {
                ceremony_id: ceremony_id.clone(),
                policy_digest: hex::encode(digest),
                custodians: policy.custodian_ids(),
                threshold: k,
                authority: hex::encode(authority.0.as_bytes()),
            },
            signed_with: None,
        };
        Store::create(state_dir, &g, vec![rec])?;
        Ok(())
    })();
    if let Err(e) = written {
        // Leave nothing half-made: share files of a ceremony that has no state are useless and confusing.
        for (_, p) in &files {
            let _ = fs::remove_file(p);
        }
        if !matches!(e, Error::AlreadyInitialised { .. }) {
            let _ = fs::remove_file(state_dir.join(DAEMON_KEY_FILE));
            let _ = fs::remove_file(state_dir.join(DB_FILE));
        }
        return Err(e);
    }
    Ok(CeremonyOutput {
        daemon_id,
        ceremony_id,
        authority,
        share_files: files,
        threshold: k,
    })
}
