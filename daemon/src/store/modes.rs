//! Permissions of the state at start: what others may write is refused (they
//! could replace the seal, the policy or D); what others may read is warned
//! about (it is ciphertext, hashes and D, but D signs what the daemon says).

use std::path::{Path, PathBuf};

use super::{DAEMON_KEY_FILE, DB_FILE};
use crate::error::{Error, Result};

/// The files whose modes are checked, with the mode they are created with
/// (`tls_key`: an operator-supplied `--tls-key`).
fn checked(state_dir: &Path, tls_key: Option<&Path>) -> Vec<(PathBuf, &'static str)> {
    let mut v = vec![
        (state_dir.to_path_buf(), "700"),
        (state_dir.join(DB_FILE), "600"),
        (state_dir.join(DAEMON_KEY_FILE), "600"),
        (state_dir.join("tls"), "700"),
        (state_dir.join("tls").join("key.pem"), "600"),
    ];
    v.extend(tls_key.map(|k| (k.to_path_buf(), "600")));
    v
}

/// Refuses group- or world-writable state; returns a warning for each file or
/// directory others may read. Files that do not exist are skipped (their own
/// checks say what is missing).
#[cfg(unix)]
pub fn check_modes(state_dir: &Path, tls_key: Option<&Path>) -> Result<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    let mut warnings = Vec::new();
    for (path, fix) in checked(state_dir, tls_key) {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        let who = |bits: u32| match (bits & 0o070 != 0, bits & 0o007 != 0) {
            (true, true) => "group and others",
            (true, false) => "group",
            _ => "others",
        };
        if mode & 0o022 != 0 {
            return Err(Error::UnsafePermissions {
                path,
                mode,
                who: who(mode & 0o022),
                fix,
            });
        }
        if mode & 0o044 != 0 {
            warnings.push(format!(
                "{} is mode {mode:o}, readable by {}; run `chmod {fix} {}`",
                path.display(),
                who(mode & 0o044),
                path.display()
            ));
        }
    }
    Ok(warnings)
}

/// No permission bits to check on this platform.
#[cfg(not(unix))]
pub fn check_modes(_state_dir: &Path, _tls_key: Option<&Path>) -> Result<Vec<String>> {
    Ok(Vec::new())
}
