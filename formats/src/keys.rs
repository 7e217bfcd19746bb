//! Public keys people paste and files carry: a member's registered
//! `ssh-ed25519` key, and the authority key A in the three spellings
//! downstream systems use (PASERK `k4.public.…`, `ssh-ed25519 …`, 64 hex digits).

use ed25519_dalek::VerifyingKey;

/// Why a key did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not an OpenSSH public key line.
    #[error("{who}: ssh_key is not an OpenSSH public key: {why}")]
    NotOpenSsh {
        /// Whose key.
        who: String,
        /// The parser's words.
        why: String,
    },
    /// An OpenSSH key of another algorithm.
    #[error("{who}: ssh_key must be an ssh-ed25519 key, found {algorithm}")]
    NotEd25519 {
        /// Whose key.
        who: String,
        /// What it is.
        algorithm: String,
    },
    /// 32 bytes that are not a valid ed25519 point.
    #[error("{who}: ssh_key is not a valid ed25519 point")]
    BadPoint {
        /// Whose key.
        who: String,
    },
    /// The authority key in none of its spellings.
    #[error("authority key {input:?}: {why}")]
    Authority {
        /// What was given.
        input: String,
        /// What is wrong.
        why: String,
    },
}

/// Parses an `ssh-ed25519 …` line into its ed25519 key and the normalised line
/// (algorithm and base64, no comment).
pub fn parse_ssh_ed25519(who: &str, line: &str) -> Result<(VerifyingKey, String), KeyError> {
    let key = ssh_key::PublicKey::from_openssh(line.trim()).map_err(|e| KeyError::NotOpenSsh {
        who: who.to_string(),
        why: e.to_string(),
    })?;
    let ed = key
        .key_data()
        .ed25519()
        .ok_or_else(|| KeyError::NotEd25519 {
            who: who.to_string(),
            algorithm: key.algorithm().to_string(),
        })?;
    let vk = VerifyingKey::from_bytes(&ed.0).map_err(|_| KeyError::BadPoint {
        who: who.to_string(),
    })?;
    let mut normal = ssh_key::PublicKey::from(key.key_data().clone());
    normal.set_comment("");
    let line = normal.to_openssh().map_err(|e| KeyError::NotOpenSsh {
        who: who.to_string(),
        why: format!("cannot re-encode: {e}"),
    })?;
    Ok((vk, line.trim().to_string()))
}

/// A's public key in the forms downstream systems use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityPublic(pub VerifyingKey);

impl AuthorityPublic {
    /// From 32 raw bytes.
    pub fn from_bytes(b: &[u8]) -> Result<AuthorityPublic, KeyError> {
        let bad = |why: String| KeyError::Authority {
            input: hex::encode(b),
            why,
        };
        let arr: [u8; 32] = b
            .try_into()
            .map_err(|_| bad(format!("is {} bytes, expected 32", b.len())))?;
        VerifyingKey::from_bytes(&arr)
            .map(AuthorityPublic)
            .map_err(|e| bad(format!("not an ed25519 key: {e}")))
    }

    /// Parses A from `k4.public.…` (PASERK), `ssh-ed25519 …`, or 64 hex digits.
    pub fn parse(s: &str) -> Result<AuthorityPublic, KeyError> {
        let s = s.trim();
        let bad = |why: String| KeyError::Authority {
            input: s.to_string(),
            why,
        };
        if s.starts_with("k4.public.") {
            let k = pasetors::keys::AsymmetricPublicKey::<pasetors::version4::V4>::try_from(s)
                .map_err(|e| bad(format!("not a PASERK k4.public key: {e:?}")))?;
            return AuthorityPublic::from_bytes(k.as_bytes());
        }
        if s.starts_with("ssh-ed25519 ") {
            let (k, _) = parse_ssh_ed25519("authority", s).map_err(|e| bad(e.to_string()))?;
            return Ok(AuthorityPublic(k));
        }
        let mut b = [0u8; 32];
        hex::decode_to_slice(s, &mut b).map_err(|_| {
            bad("expected k4.public.…, ssh-ed25519 … or 64 hex digits (`breakglass authority` prints it)".into())
        })?;
        AuthorityPublic::from_bytes(&b)
    }

    /// `k4.public.…` (PASERK).
    pub fn paserk(&self) -> String {
        use pasetors::paserk::FormatAsPaserk;
        let mut s = String::new();
        match pasetors::keys::AsymmetricPublicKey::<pasetors::version4::V4>::from(self.0.as_bytes())
        {
            Ok(k) => {
                let _ = k.fmt(&mut s);
            }
            Err(_) => s.push_str("invalid"),
        }
        s
    }

    /// `ssh-ed25519 AAAA… breakglass-authority`, for `TrustedUserCAKeys`.
    pub fn ssh(&self) -> String {
        let kd =
            ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey(self.0.to_bytes()));
        let pk = ssh_key::PublicKey::new(kd, "breakglass-authority");
        pk.to_openssh().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_in_every_spelling() {
        let vk = ed25519_dalek::SigningKey::from_bytes(&[4; 32]).verifying_key();
        let a = AuthorityPublic(vk);
        for s in [a.paserk(), a.ssh(), hex::encode(vk.as_bytes())] {
            assert_eq!(AuthorityPublic::parse(&s), Ok(a.clone()), "{s}");
        }
        let e = AuthorityPublic::parse("nope").err().map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("64 hex digits"));
    }

    #[test]
    fn member_keys() {
        let vk = ed25519_dalek::SigningKey::from_bytes(&[4; 32]).verifying_key();
        let line = format!(
            "{} me@host",
            AuthorityPublic(vk)
                .ssh()
                .trim_end_matches(" breakglass-authority")
        );
        let (k, normal) = parse_ssh_ed25519("c1", &line).unwrap();
        assert_eq!(k, vk);
        assert!(!normal.contains("me@host"));
        assert!(matches!(
            parse_ssh_ed25519("c1", "ssh-rsa AAAA"),
            Err(KeyError::NotOpenSsh { .. })
        ));
    }
}
