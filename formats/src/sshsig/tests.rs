//! Tests of the parent module, with a test authenticator built from
//! `PROTOCOL.u2f` (the interop suite proves it with `ssh-keygen -Y verify`).

use super::*;
use ed25519_dalek::{Signer, SigningKey};
use ssh_key::public::{Ed25519PublicKey, SkEd25519};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};

const PAYLOAD: &[u8] = b"breakglass/v1/submit-share test payload";

fn file_key(seed: u8) -> PrivateKey {
    let kp = ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]);
    PrivateKey::new(ssh_key::private::KeypairData::Ed25519(kp), "test").unwrap()
}

/// A security key holding ed25519 seed `seed` for `application`.
fn sk_key(seed: u8, application: &str) -> (SigningKey, PublicKey) {
    let sk = SigningKey::from_bytes(&[seed; 32]);
    let data = KeyData::SkEd25519(SkEd25519::new(
        Ed25519PublicKey(sk.verifying_key().to_bytes()),
        application,
    ));
    (sk, PublicKey::new(data, "sk"))
}

/// What the authenticator returns for `payload`, with `flags` and `counter`.
fn sk_sign(sk: &SigningKey, key: &PublicKey, flags: u8, counter: u32, payload: &[u8]) -> SshSig {
    let KeyData::SkEd25519(k) = key.key_data() else {
        panic!("not an sk key")
    };
    let signed = SshSig::signed_data(NAMESPACE, HashAlg::Sha512, payload).unwrap();
    let report = SkReport {
        flags,
        counter,
        application: k.application().to_string(),
    };
    let mut bytes = sk
        .sign(&sk_signed_data(&report, &signed))
        .to_bytes()
        .to_vec();
    bytes.push(flags);
    bytes.extend_from_slice(&counter.to_be_bytes());
    let sig = ssh_key::Signature::new(Algorithm::SkEd25519, bytes).unwrap();
    SshSig::new(key.key_data().clone(), NAMESPACE, HashAlg::Sha512, sig).unwrap()
}

/// Invariant 4: a file key's SSHSIG verifies over its payload only, in the
/// breakglass namespace only, with the registered key only; and it reads
/// back from PEM.
#[test]
fn file_key_signatures() {
    let k = file_key(1);
    let sig = SshSig::sign(&k, NAMESPACE, HashAlg::Sha512, PAYLOAD).unwrap();
    let pem = sig.to_pem(LineEnding::LF).unwrap();
    let back = parse(pem.as_bytes()).unwrap();
    let v = verify(k.public_key(), PAYLOAD, &back).unwrap();
    assert_eq!(
        v,
        Verified {
            kind: KeyKind::Ed25519,
            sk: None
        }
    );
    assert_eq!(
        verify(k.public_key(), b"other", &back),
        Err(SigError::BadSignature)
    );
    assert!(matches!(
        verify(file_key(2).public_key(), PAYLOAD, &back),
        Err(SigError::OtherKey { .. })
    ));
    let git = SshSig::sign(&k, "git", HashAlg::Sha512, PAYLOAD).unwrap();
    assert_eq!(
        verify(k.public_key(), PAYLOAD, &git),
        Err(SigError::Namespace { got: "git".into() })
    );
    assert!(matches!(
        parse(b"not a signature"),
        Err(SigError::Malformed(_))
    ));
}

/// Security keys: presence is required and reported with verification and
/// the counter; a signature for another application or key, or over other
/// bytes, or with altered flags, is refused.
#[test]
fn security_key_signatures() {
    let (sk, key) = sk_key(3, "ssh:");
    let sig = sk_sign(
        &sk,
        &key,
        FLAG_USER_PRESENT | FLAG_USER_VERIFIED,
        41,
        PAYLOAD,
    );
    let v = verify(&key, PAYLOAD, &sig).unwrap();
    assert_eq!(v.kind, KeyKind::SkEd25519);
    let r = v.sk.unwrap();
    assert!(r.user_present() && r.user_verified());
    assert_eq!((r.counter, r.application.as_str()), (41, "ssh:"));

    let touch_only = sk_sign(&sk, &key, FLAG_USER_PRESENT, 42, PAYLOAD);
    assert!(!verify(&key, PAYLOAD, &touch_only)
        .unwrap()
        .sk
        .unwrap()
        .user_verified());

    let no_touch = sk_sign(&sk, &key, FLAG_USER_VERIFIED, 43, PAYLOAD);
    assert_eq!(
        verify(&key, PAYLOAD, &no_touch),
        Err(SigError::NoUserPresence)
    );

    assert_eq!(verify(&key, b"other", &sig), Err(SigError::BadSignature));
    // The application is part of the registered key.
    let (_, other_app) = sk_key(3, "ssh:other");
    assert!(matches!(
        verify(&other_app, PAYLOAD, &sig),
        Err(SigError::OtherKey { .. })
    ));
    // Flags raised after signing (claiming verification) break the signature.
    let mut bytes = sig.signature_bytes().to_vec();
    bytes[64] = FLAG_USER_PRESENT | FLAG_USER_VERIFIED | 0x40;
    let forged = SshSig::new(
        key.key_data().clone(),
        NAMESPACE,
        HashAlg::Sha512,
        ssh_key::Signature::new(Algorithm::SkEd25519, bytes).unwrap(),
    )
    .unwrap();
    assert_eq!(verify(&key, PAYLOAD, &forged), Err(SigError::BadSignature));
}

/// `sk-ecdsa-sha2-nistp256@openssh.com`: the same checks, with OpenSSH's
/// ECDSA signature encoding.
#[test]
fn security_key_ecdsa_signatures() {
    use p256::ecdsa::signature::Signer as _;
    let sk = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
    let point = sk.verifying_key().to_encoded_point(false);
    let ec = ssh_key::public::EcdsaPublicKey::NistP256(point);
    let ssh_key::public::EcdsaPublicKey::NistP256(p) = ec else {
        panic!()
    };
    let key = PublicKey::new(
        KeyData::SkEcdsaSha2NistP256(ssh_key::public::SkEcdsaSha2NistP256::new(p, "ssh:")),
        "sk",
    );
    let sign = |flags: u8, counter: u32, payload: &[u8]| {
        let signed = SshSig::signed_data(NAMESPACE, HashAlg::Sha512, payload).unwrap();
        let report = SkReport {
            flags,
            counter,
            application: "ssh:".into(),
        };
        let s: p256::ecdsa::Signature = sk.sign(&sk_signed_data(&report, &signed));
        let plain = ssh_key::Signature::try_from(s).unwrap();
        let mut bytes = plain.as_bytes().to_vec();
        bytes.push(flags);
        bytes.extend_from_slice(&counter.to_be_bytes());
        let sig = ssh_key::Signature::new(Algorithm::SkEcdsaSha2NistP256, bytes).unwrap();
        SshSig::new(key.key_data().clone(), NAMESPACE, HashAlg::Sha512, sig).unwrap()
    };
    let v = verify(&key, PAYLOAD, &sign(FLAG_USER_PRESENT, 5, PAYLOAD)).unwrap();
    assert_eq!(v.kind, KeyKind::SkEcdsaP256);
    assert_eq!(v.sk.unwrap().counter, 5);
    assert_eq!(
        verify(&key, PAYLOAD, &sign(0, 6, PAYLOAD)),
        Err(SigError::NoUserPresence)
    );
    assert_eq!(
        verify(&key, b"other", &sign(FLAG_USER_PRESENT, 7, PAYLOAD)),
        Err(SigError::BadSignature)
    );
}
