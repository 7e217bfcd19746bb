//! The fixed world the targets run against, built once per process.
//!
//! Keys come from fixed seeds (custodian `c{i}` from `[i; 32]`, commander `ic`
//! from `[100; 32]`, the daemon key D from `[150; 32]`, the authority A from
//! `[200; 32]`), and the clock is [`NOW`],
//! so seed inputs made by `examples/make_seeds.rs` stay valid: a fuzz input
//! that starts from a seed reaches the deep paths (signature accepted, share
//! opened, commitment matched) instead of failing at the first check.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use breakglass_daemon::engine::auth::{
    authenticate_custodian, AuthenticatedCustodian, Checks, MemoryCounters, SignedBy,
};
use breakglass_daemon::engine::collecting::{Accepted, Collecting, OpenParams};
use breakglass_daemon::engine::policy::Policy;
use breakglass_daemon::engine::request::{Request, StoredCredential};
use breakglass_daemon::engine::share::{commitment_hash, verify_share, Commitment, Lineage};
use breakglass_formats::keys::AuthorityPublic;
use breakglass_formats::sshcert::{key_id, serial_for};
use breakglass_proto::signing;
use breakglass_proto::transport::SHARE_LEN;
use ed25519_dalek::{Signer, SigningKey};
use x25519_dalek::StaticSecret;

/// The clock every target uses, seconds since the epoch (2096-10-02). It is in
/// the far future because pasetors checks a token's `exp` against the wall
/// clock whatever `now` the caller passes, so the fixture token (which
/// expires shortly after `NOW`) must not expire in real time either.
pub const NOW: u64 = 4_000_000_000;
/// Daemon id bound into every signed payload.
pub const DAEMON_ID: &str = "fuzz-daemon";
/// Ceremony id bound into every share commitment.
pub const CEREMONY_ID: &str = "fuzz-ceremony";
/// The epoch every fixture share belongs to (the first, as after `init`).
pub const EPOCH: u64 = 1;
/// The split every fixture share comes from.
pub const LINEAGE: Lineage<'static> = Lineage {
    ceremony_id: CEREMONY_ID,
    epoch: EPOCH,
};
/// Custodian ids; custodian `CUSTODIANS[i]` holds x = i + 1 and key seed `[i + 1; 32]`.
pub const CUSTODIANS: [&str; 3] = ["c1", "c2", "c3"];
/// The one commander.
pub const COMMANDER: &str = "ic";
/// Key seed byte of the commander.
pub const COMMANDER_SEED: u8 = 100;
/// Key seed byte of the daemon key D (audit checkpoints).
pub const DAEMON_SEED: u8 = 150;
/// Key seed byte of the authority key A.
pub const AUTHORITY_SEED: u8 = 200;
/// Scope the fixture requests ask for.
pub const SCOPE: &str = "prod-ssh";
/// Reason the fixture requests give.
pub const REASON: &str = "fuzz: primary database down";
/// TTL the fixture requests ask for.
pub const TTL: u64 = 1800;
/// Nonce of the collecting request's open call.
pub const COLLECTING_NONCE: [u8; 16] = [1; 16];
/// Nonce of the unlocked request's open call.
pub const UNLOCKED_NONCE: [u8; 16] = [2; 16];
/// When the fixture requests were opened.
pub const OPENED_AT: u64 = NOW - 60;

/// An ed25519 key from a fixed seed byte.
pub fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// The daemon key D, which signs audit checkpoints.
pub fn daemon_key() -> SigningKey {
    signing_key(DAEMON_SEED)
}

/// `ssh-ed25519 AAAA…` for a key.
pub fn ssh_public(sk: &SigningKey) -> String {
    let kp = ssh_key::private::Ed25519Keypair::from_seed(&sk.to_bytes());
    ssh_key::PublicKey::from(kp.public)
        .to_openssh()
        .expect("an ed25519 public key encodes")
}

/// The OpenSSH private key (PEM) of a key, as a custodian keeps it.
pub fn ssh_private_pem(sk: &SigningKey) -> String {
    let kp = ssh_key::private::Ed25519Keypair::from_seed(&sk.to_bytes());
    ssh_key::PrivateKey::from(kp)
        .to_openssh(ssh_key::LineEnding::LF)
        .expect("an ed25519 private key encodes")
        .to_string()
}

/// The operator's policy file: threshold 2 of 3, one commander.
pub fn policy_toml() -> String {
    let mut s = String::from(
        "threshold = 2\ncollection_window = \"15m\"\nmax_ttl = \"1h\"\n\n\
         [[scopes]]\nname = \"prod-ssh\"\nprincipals = [\"root\"]\nmax_ttl = \"30m\"\n\n\
         [[scopes]]\nname = \"prod-db\"\ncredentials = [\"token\"]\n\n",
    );
    for (i, id) in CUSTODIANS.iter().enumerate() {
        let seed = u8::try_from(i + 1).expect("three custodians");
        s.push_str(&format!(
            "[[custodians]]\nid = \"{id}\"\nname = \"Custodian {id}\"\nssh_key = \"{} {id}@example\"\n\n",
            ssh_public(&signing_key(seed))
        ));
    }
    s.push_str(&format!(
        "[[commanders]]\nid = \"{COMMANDER}\"\nssh_key = \"{}\"\nscopes = [\"prod-ssh\"]\n",
        ssh_public(&signing_key(COMMANDER_SEED))
    ));
    s
}

/// The plaintext share `x ‖ y` of custodian x (1-based).
pub fn share(x: u8) -> [u8; SHARE_LEN] {
    let mut s = [0u8; SHARE_LEN];
    s[0] = x;
    for (i, b) in s[1..].iter_mut().enumerate() {
        *b = x
            .wrapping_mul(31)
            .wrapping_add(u8::try_from(i).unwrap_or(0));
    }
    s
}

/// The commander's OpenSSH public key, normalised (no comment), as requests bind it.
pub fn commander_ssh_key() -> String {
    ssh_public(&signing_key(COMMANDER_SEED)).trim().to_string()
}

/// Everything the targets share.
pub struct World {
    /// The validated policy.
    pub policy: Policy,
    /// E_req of both fixture requests.
    pub ephemeral: StaticSecret,
    /// A request collecting shares at [`NOW`].
    pub collecting: Request,
    /// A request already unlocked (c1 and c2 approved), with a stored credential.
    pub unlocked: Request,
    /// Share commitments by custodian id.
    pub commitments: BTreeMap<String, Commitment>,
    /// Each custodian, authenticated once with a real signature, in share order.
    pub custodians: Vec<AuthenticatedCustodian>,
    /// The authority public key A.
    pub authority: AuthorityPublic,
    /// A valid PASETO v4.public credential signed by A, valid at [`NOW`].
    pub token: String,
    /// A valid OpenSSH user certificate signed by A, valid at [`NOW`].
    pub certificate: String,
}

impl World {
    /// The live state of the collecting request, as the daemon holds it: the
    /// same record (same inputs, same E_req), owning E_req.
    pub fn live_collecting(&self) -> Collecting {
        open_fixture_request(&self.policy, &COLLECTING_NONCE)
    }

    /// The request with this id, as the store would return it.
    pub fn request(&self, id: &str) -> Option<&Request> {
        [&self.collecting, &self.unlocked]
            .into_iter()
            .find(|r| r.id == id)
    }
}

/// Byte E_req is made of: the fixture's "RNG" yields only this byte, so both
/// fixture requests (and every re-opened live state) have E_req = `[0x42; 32]`
/// and the seeds' sealed shares open.
pub const EPHEMERAL_BYTE: u8 = 0x42;

/// A constant byte stream standing in for the daemon's injected RNG. Marked
/// `CryptoRng` only so the engine accepts it: it is the opposite of random, so
/// that E_req is known to the seeds.
struct Fixed;

impl rand_core::RngCore for Fixed {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes([EPHEMERAL_BYTE; 4])
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes([EPHEMERAL_BYTE; 8])
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(EPHEMERAL_BYTE);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(EPHEMERAL_BYTE);
        Ok(())
    }
}

impl rand_core::CryptoRng for Fixed {}

fn open_fixture_request(policy: &Policy, nonce: &[u8]) -> Collecting {
    let ssh_key = commander_ssh_key();
    let payload = signing::open_request(
        DAEMON_ID, COMMANDER, SCOPE, REASON, TTL, &ssh_key, nonce, OPENED_AT,
    );
    let (c, _) = Collecting::open(
        OpenParams {
            id: signing::request_id(&payload),
            daemon_id: DAEMON_ID.into(),
            requester: COMMANDER.into(),
            scope: SCOPE.into(),
            reason: REASON.into(),
            ttl_seconds: TTL,
            window_seconds: policy.collection_window_seconds,
            threshold: u32::from(policy.threshold),
            ssh_public_key: ssh_key,
            // Left empty so the seed corpus (and the CLI's fixtures copied from
            // it) keeps its bytes.
            kinds: vec![],
            principals: vec![],
            ssh_extensions: vec![],
            kind: breakglass_daemon::engine::request::Kind::Access,
            change: None,
        },
        &mut Fixed,
        OPENED_AT,
    )
    .expect("fixture request opens");
    c
}

fn unlock_fixture_request(
    policy: &Policy,
    commitments: &BTreeMap<String, Commitment>,
    custodians: &[AuthenticatedCustodian],
) -> Request {
    let mut c = open_fixture_request(policy, &UNLOCKED_NONCE);
    for who in &custodians[..usize::from(policy.threshold)] {
        let share = verify_share(who, &commitments[who.id()], LINEAGE, &share(who.x()))
            .expect("fixture share verifies");
        let admitted = c
            .admit(policy, who.id(), NOW)
            .expect("fixture share is admitted");
        let q = match c.accept(admitted, share, |_, _| Ok(())) {
            Ok(Accepted::Collecting(next)) => {
                c = next;
                continue;
            }
            Ok(Accepted::Quorum(q)) => q,
            Err(_) => panic!("fixture share refused"),
        };
        let id = q.request().id.clone();
        return q
            .unlock(
                NOW,
                |_, _| {
                    Ok((
                        StoredCredential {
                            expires_at: NOW + TTL,
                            sealed: b"age ciphertext".to_vec(),
                            ssh_serial: Some(serial_for(&id)),
                            ssh_key_id: Some(key_id(&id, COMMANDER)),
                            valid_from: None,
                        },
                        vec!["paseto".into()],
                    ))
                },
                |_, _| Ok(()),
            )
            .ok()
            .expect("fixture request unlocks");
    }
    panic!("the fixture policy's threshold was not reached")
}

fn build() -> World {
    let policy = Policy::from_toml(&policy_toml()).expect("fixture policy is valid");
    let ephemeral = StaticSecret::from([EPHEMERAL_BYTE; 32]);
    let collecting = open_fixture_request(&policy, &COLLECTING_NONCE)
        .request()
        .clone();
    let mut commitments = BTreeMap::new();
    let mut custodians = Vec::new();
    for (i, id) in CUSTODIANS.iter().enumerate() {
        let x = u8::try_from(i + 1).expect("three custodians");
        commitments.insert(
            id.to_string(),
            Commitment {
                x,
                hash: commitment_hash(CEREMONY_ID, EPOCH, id, &share(x)),
            },
        );
        let sig = signing_key(x).sign(b"fixture").to_bytes();
        let who = authenticate_custodian(
            checks(&policy, NOW),
            &SignedBy {
                signer_id: id,
                signed_at: NOW,
                signature: &sig,
            },
            b"fixture",
        )
        .expect("fixture custodian authenticates");
        custodians.push(who);
    }
    let unlocked = unlock_fixture_request(&policy, &commitments, &custodians);
    let authority = AuthorityPublic(signing_key(AUTHORITY_SEED).verifying_key());
    let token = token(&signing_key(AUTHORITY_SEED), &unlocked.id);
    let certificate = certificate(&signing_key(AUTHORITY_SEED), &unlocked.id);
    World {
        policy,
        ephemeral,
        collecting,
        unlocked,
        commitments,
        custodians,
        authority,
        token,
        certificate,
    }
}

fn rfc3339(t: u64) -> String {
    let t = i64::try_from(t).expect("fixture time fits");
    time::OffsetDateTime::from_unix_timestamp(t)
        .expect("fixture time in range")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("fixture time formats")
}

/// The token `crypto::credential::mint` would make for a request, signed by
/// `authority` (minted here with pasetors because the
/// daemon derives A only from a random seed). ed25519 is deterministic, so
/// the token is the same in every run.
pub fn token(authority: &SigningKey, request_id: &str) -> String {
    use pasetors::claims::Claims;
    use pasetors::keys::AsymmetricSecretKey;
    use pasetors::version4::V4;
    let mut c = Claims::new().expect("claims");
    c.issuer(&format!("breakglass:{DAEMON_ID}")).expect("iss");
    c.subject(COMMANDER).expect("sub");
    c.token_identifier(request_id).expect("jti");
    c.issued_at(&rfc3339(NOW - 10)).expect("iat");
    c.not_before(&rfc3339(NOW - 10)).expect("nbf");
    c.expiration(&rfc3339(NOW - 10 + TTL)).expect("exp");
    c.add_additional("scope", SCOPE).expect("scope");
    c.add_additional("principals", vec!["root".to_string()])
        .expect("principals");
    c.add_additional("approvers", vec!["c1".to_string(), "c2".to_string()])
        .expect("approvers");
    c.add_additional("reason_sha256", "00".repeat(32))
        .expect("reason_sha256");
    let mut sk = [0u8; 64];
    sk[..32].copy_from_slice(&authority.to_bytes());
    sk[32..].copy_from_slice(authority.verifying_key().as_bytes());
    let sk = AsymmetricSecretKey::<V4>::from(sk.as_slice()).expect("authority key");
    pasetors::public::sign(&sk, &c, None, None).expect("token signs")
}

/// The world, built on first use.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(build)
}

/// The OpenSSH user certificate `crypto::sshcert::mint` would make for a
/// request, for the commander's key, signed by `authority` with a fixed nonce (so it is the
/// same in every run).
pub fn certificate(authority: &SigningKey, request_id: &str) -> String {
    use ssh_key::certificate::{Builder, CertType};
    let subject = ssh_key::PublicKey::from_openssh(&commander_ssh_key()).expect("subject key");
    let mut b = Builder::new(
        [7u8; 32].to_vec(),
        subject.key_data().clone(),
        NOW - 10 - 120,
        NOW - 10 + TTL,
    )
    .expect("builder");
    b.serial(serial_for(request_id)).expect("serial");
    b.cert_type(CertType::User).expect("type");
    b.key_id(key_id(request_id, COMMANDER)).expect("key id");
    b.valid_principal("root").expect("principal");
    b.extension("permit-pty", "").expect("extension");
    b.comment(key_id(request_id, COMMANDER)).expect("comment");
    let ca = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(
        &authority.to_bytes(),
    ));
    b.sign(&ca)
        .expect("certificate signs")
        .to_openssh()
        .expect("certificate encodes")
}

/// The attestation challenge the `attest` target issues to custodian `c1` at
/// [`NOW`] (a seeded RNG, so the seeds can seal a genuine share to it), in
/// fresh registry.
pub fn attestation() -> (
    breakglass_daemon::engine::attest::Attestations,
    breakglass_daemon::engine::attest::Issued,
) {
    use rand::SeedableRng;
    let w = world();
    let mut a = breakglass_daemon::engine::attest::Attestations::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let issued = a.start(
        &mut rng,
        &breakglass_daemon::engine::attest::Issue {
            daemon_id: DAEMON_ID,
            ceremony_id: CEREMONY_ID,
            epoch: 1,
            custodian: &w.custodians[0],
            now: NOW,
        },
    );
    (a, issued)
}

/// What a signature check needs, with security-key counters in memory (one
/// set for the whole fuzz run: a counter only has to rise).
pub fn checks(policy: &Policy, now: u64) -> Checks<'_> {
    static COUNTERS: OnceLock<MemoryCounters> = OnceLock::new();
    Checks {
        policy,
        counters: COUNTERS.get_or_init(MemoryCounters::default),
        now,
    }
}
