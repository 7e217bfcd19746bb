//! The daemon key file (`daemon.key`, hex, mode 0600) in the state directory.

use std::path::Path;

use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use super::DAEMON_KEY_FILE;
use crate::error::{Error, Result};

/// Reads the daemon key D from the state directory.
pub fn read_daemon_key(state_dir: &Path) -> Result<SigningKey> {
    let path = state_dir.join(DAEMON_KEY_FILE);
    let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::StateMissing {
            path: state_dir.to_path_buf(),
            why: format!("{DAEMON_KEY_FILE} is missing"),
        },
        std::io::ErrorKind::PermissionDenied => super::open::unreadable(&path),
        _ => Error::io(&path, e),
    })?);
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut()).map_err(|_| Error::StateCorrupt {
        path: path.clone(),
        why: "not a 32-byte hex key".into(),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}
