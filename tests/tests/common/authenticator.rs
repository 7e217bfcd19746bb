//! A test FIDO2 authenticator: signs exactly as OpenSSH's security-key
//! protocol defines (`PROTOCOL.u2f`: the signed data is SHA-256 of the
//! application, the flags, the big-endian counter, SHA-256 of the message),
//! for `sk-ssh-ed25519@openssh.com` and `sk-ecdsa-sha2-nistp256@openssh.com`,
//! wrapped as SSHSIG (`PROTOCOL.sshsig`) and armored as `ssh-keygen -Y sign`
//! writes it. The blob is written here byte by byte (ssh-key 0.6 puts an
//! sk-ecdsa signature's flags and counter inside the signature string, which
//! OpenSSH refuses). No hardware on CI: `ssh-keygen -Y verify` proves the
//! format (tests/tests/interop_sshsig.rs).

use base64::Engine;
use breakglass_formats::sshsig::{
    sk_signed_data, SkReport, FLAG_USER_PRESENT, FLAG_USER_VERIFIED, NAMESPACE,
};
use ssh_key::public::{Ed25519PublicKey, KeyData, SkEcdsaSha2NistP256, SkEd25519};
use ssh_key::{HashAlg, PublicKey, SshSig};

/// The credential a test authenticator holds.
pub enum Credential {
    /// ed25519.
    Ed25519(ed25519_dalek::SigningKey),
    /// ECDSA P-256.
    P256(p256::ecdsa::SigningKey),
}

/// A security key with one credential for one application.
pub struct Authenticator {
    pub credential: Credential,
    pub application: String,
}

/// A signature as the authenticator's owner would hand it over.
pub struct Signed {
    /// `-----BEGIN SSH SIGNATURE-----` armor.
    pub pem: String,
    /// The same, parsed.
    pub sig: SshSig,
}

fn string(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&u32::try_from(b.len()).unwrap().to_be_bytes());
    out.extend_from_slice(b);
}

fn mpint(out: &mut Vec<u8>, unsigned: &[u8]) {
    let mut v: Vec<u8> = unsigned.iter().copied().skip_while(|b| *b == 0).collect();
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    string(out, &v);
}

impl Authenticator {
    pub fn ed25519(seed: u8, application: &str) -> Authenticator {
        Authenticator {
            credential: Credential::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32])),
            application: application.into(),
        }
    }

    pub fn p256(seed: u8, application: &str) -> Authenticator {
        Authenticator {
            credential: Credential::P256(p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap()),
            application: application.into(),
        }
    }

    /// The public key as OpenSSH writes it.
    pub fn public(&self) -> PublicKey {
        let data = match &self.credential {
            Credential::Ed25519(k) => KeyData::SkEd25519(SkEd25519::new(
                Ed25519PublicKey(k.verifying_key().to_bytes()),
                self.application.clone(),
            )),
            Credential::P256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                let ssh_key::public::EcdsaPublicKey::NistP256(p) =
                    ssh_key::public::EcdsaPublicKey::NistP256(point)
                else {
                    unreachable!()
                };
                KeyData::SkEcdsaSha2NistP256(SkEcdsaSha2NistP256::new(p, self.application.clone()))
            }
        };
        PublicKey::new(data, "test-authenticator")
    }

    /// An SSHSIG over `payload` in the breakglass namespace, with `flags` and `counter`.
    pub fn sign(&self, payload: &[u8], flags: u8, counter: u32) -> Signed {
        self.sign_as(payload, flags, flags, counter)
    }

    /// As [`Authenticator::sign`], signing `signed_flags` but writing `sent_flags`
    /// into the signature (a forgery: flags raised after the touch).
    pub fn sign_as(
        &self,
        payload: &[u8],
        signed_flags: u8,
        sent_flags: u8,
        counter: u32,
    ) -> Signed {
        let signed = SshSig::signed_data(NAMESPACE, HashAlg::Sha512, payload).unwrap();
        let sig_blob = self.signature_blob(&signed, signed_flags, sent_flags, counter);
        let key = self.public();
        let mut blob = b"SSHSIG".to_vec();
        blob.extend_from_slice(&1u32.to_be_bytes());
        string(&mut blob, &key.to_bytes().unwrap());
        string(&mut blob, NAMESPACE.as_bytes());
        string(&mut blob, b"");
        string(&mut blob, b"sha512");
        string(&mut blob, &sig_blob);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
        let mut pem = String::from("-----BEGIN SSH SIGNATURE-----\n");
        for chunk in b64.as_bytes().chunks(70) {
            pem.push_str(std::str::from_utf8(chunk).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END SSH SIGNATURE-----\n");
        let sig = SshSig::from_pem(&pem).unwrap();
        Signed { pem, sig }
    }

    /// The OpenSSH signature blob (`string alg, string sig, byte flags,
    /// uint32 counter`) over `data`, as an authenticator returns it to
    /// ssh-agent or ssh-keygen.
    pub fn signature_blob(
        &self,
        data: &[u8],
        signed_flags: u8,
        sent_flags: u8,
        counter: u32,
    ) -> Vec<u8> {
        let report = SkReport {
            flags: signed_flags,
            counter,
            application: self.application.clone(),
        };
        let data = sk_signed_data(&report, data);
        let key = self.public();
        let mut sig_blob = Vec::new();
        string(&mut sig_blob, key.algorithm().as_str().as_bytes());
        match &self.credential {
            Credential::Ed25519(k) => {
                use ed25519_dalek::Signer;
                string(&mut sig_blob, &k.sign(&data).to_bytes());
            }
            Credential::P256(k) => {
                use p256::ecdsa::signature::Signer;
                let s: p256::ecdsa::Signature = k.sign(&data);
                let (r, s) = s.split_bytes();
                let mut inner = Vec::new();
                mpint(&mut inner, &r);
                mpint(&mut inner, &s);
                string(&mut sig_blob, &inner);
            }
        }
        sig_blob.push(sent_flags);
        sig_blob.extend_from_slice(&counter.to_be_bytes());
        sig_blob
    }
}

/// An ssh-agent (the protocol of draft-miller-ssh-agent) holding one test
/// security key, on a Unix socket: it lists the key and signs what it is
/// given as the authenticator would (touch and PIN reported, counter rising
/// from 1). It stands in for an agent holding a FIDO2 key, which needs
/// hardware; the CLI reaches it through OpenSSH's own `ssh-keygen -Y sign -U`.
pub struct Agent {
    pub sock: std::path::PathBuf,
    pub signatures: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl Agent {
    pub fn start(dir: &std::path::Path, key: Authenticator) -> Agent {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let sock = dir.join("sk-agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let signatures = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let count = signatures.clone();
        let key = std::sync::Arc::new(key);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let key = key.clone();
                let count = count.clone();
                std::thread::spawn(move || loop {
                    let mut len = [0u8; 4];
                    if conn.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut msg = vec![0u8; u32::from_be_bytes(len) as usize];
                    if conn.read_exact(&mut msg).is_err() || msg.is_empty() {
                        return;
                    }
                    let blob = key.public().to_bytes().unwrap();
                    let mut reply = Vec::new();
                    match msg[0] {
                        // SSH_AGENTC_REQUEST_IDENTITIES → SSH_AGENT_IDENTITIES_ANSWER
                        11 => {
                            reply.push(12);
                            reply.extend_from_slice(&1u32.to_be_bytes());
                            string(&mut reply, &blob);
                            string(&mut reply, b"test security key");
                        }
                        // SSH_AGENTC_SIGN_REQUEST → SSH_AGENT_SIGN_RESPONSE
                        13 => {
                            let mut at = 1;
                            let mut field = || {
                                let n = u32::from_be_bytes(msg[at..at + 4].try_into().unwrap())
                                    as usize;
                                let v = msg[at + 4..at + 4 + n].to_vec();
                                at += 4 + n;
                                v
                            };
                            let asked = field();
                            let data = field();
                            if asked != blob {
                                reply.push(5);
                            } else {
                                let counter = count.fetch_add(1, Ordering::SeqCst) + 1;
                                let flags = FLAG_USER_PRESENT | FLAG_USER_VERIFIED;
                                reply.push(14);
                                string(
                                    &mut reply,
                                    &key.signature_blob(&data, flags, flags, counter),
                                );
                            }
                        }
                        // SSH_AGENT_FAILURE for everything else.
                        _ => reply.push(5),
                    }
                    let mut out = u32::try_from(reply.len()).unwrap().to_be_bytes().to_vec();
                    out.extend_from_slice(&reply);
                    if conn.write_all(&out).is_err() {
                        return;
                    }
                });
            }
        });
        Agent { sock, signatures }
    }
}
