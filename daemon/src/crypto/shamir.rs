//! Split and combine R with Shamir's scheme over GF(256), via vsss-rs.
//!
//! Share bytes are `x ‖ y₁ … y₃₂` (33 bytes). We hand out x = 1..n in
//! custodian order. Combining takes only [`VerifiedShare`]s, which already
//! passed the length, x ≠ 0, own-slot and commitment checks; distinctness of x
//! and the count are checked again here because this is where they matter.

use vsss_rs::Gf256;
use zeroize::Zeroizing;

use super::secret::RootKey;
use crate::engine::collecting::Quorum;
use crate::engine::share::VerifiedShare;
use crate::error::{Error, Result};
use breakglass_proto::transport::SHARE_LEN;

/// One share as produced by the ceremony, wiped on drop.
pub struct ShareBytes(pub(crate) Zeroizing<[u8; SHARE_LEN]>);

impl ShareBytes {
    /// The x coordinate.
    pub fn x(&self) -> u8 {
        self.0[0]
    }

    /// `x ‖ y`, for writing the custodian's share file.
    pub fn expose(&self) -> &[u8; SHARE_LEN] {
        &self.0
    }
}

/// Splits R into `n` shares, any `k` of which recover it. Share `i` has x = i + 1.
pub fn split(root: &RootKey, k: u8, n: u8) -> Result<Vec<ShareBytes>> {
    if k < 2 || n < k {
        return Err(Error::Internal(format!(
            "split {k} of {n}: need 2 <= k <= n"
        )));
    }
    // Every raw share is wiped when `raw` drops, on the error paths too.
    let raw = Zeroizing::new(
        Gf256::split_array(
            usize::from(k),
            usize::from(n),
            root.expose(),
            rand_core::OsRng,
        )
        .map_err(|e| Error::Internal(format!("shamir split failed: {e:?}")))?,
    );
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let ok = s.len() == SHARE_LEN && usize::from(s[0]) == i + 1;
        let mut b = Zeroizing::new([0u8; SHARE_LEN]);
        if ok {
            b.copy_from_slice(s);
        }
        if !ok {
            return Err(Error::Internal(format!(
                "shamir split gave share {i} an unexpected shape"
            )));
        }
        out.push(ShareBytes(b));
    }
    Ok(out)
}

/// Rebuilds R from a quorum (the engine proved the count and the distinct,
/// non-zero x of its shares when it built the [`Quorum`]).
pub fn combine(quorum: Quorum<'_>) -> Result<RootKey> {
    combine_bytes(quorum.shares().iter().map(VerifiedShare::bytes))
}

/// The ceremony's self-check: rebuilds R from the first `k` shares it just made,
/// through the same combiner an unlock uses.
pub fn combine_split(shares: &[ShareBytes]) -> Result<RootKey> {
    combine_bytes(shares.iter().map(ShareBytes::expose))
}

fn combine_bytes<'a>(shares: impl Iterator<Item = &'a [u8; SHARE_LEN]>) -> Result<RootKey> {
    let raw: Zeroizing<Vec<Vec<u8>>> = Zeroizing::new(shares.map(|s| s.to_vec()).collect());
    let secret = Zeroizing::new(
        Gf256::combine_array(raw.as_slice())
            .map_err(|e| Error::Internal(format!("shamir combine failed: {e:?}")))?,
    );
    if secret.len() != 32 {
        return Err(Error::Internal(format!(
            "combined secret is {} bytes, expected 32",
            secret.len()
        )));
    }
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(&secret);
    Ok(RootKey(k))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::auth::{authenticate_custodian, SignedBy};
    use crate::engine::policy::tests::{key, sample_toml};
    use crate::engine::policy::Policy;
    use crate::engine::share::{commitment_hash, verify_share, Commitment};
    use ed25519_dalek::Signer;
    use proptest::prelude::*;

    /// Verifies raw shares the way the daemon does, for combine tests.
    pub fn verified(policy: &Policy, shares: &[&ShareBytes]) -> Vec<VerifiedShare> {
        shares
            .iter()
            .map(|s| {
                let id = format!("c{}", s.x());
                let sig = key(s.x()).sign(b"t").to_bytes();
                let who = authenticate_custodian(
                    crate::engine::auth::test_checks(policy, 1),
                    &SignedBy {
                        signer_id: &id,
                        signed_at: 1,
                        signature: &sig,
                    },
                    b"t",
                )
                .unwrap();
                let com = Commitment {
                    x: s.x(),
                    hash: commitment_hash("cer", 1, &id, s.expose()),
                };
                verify_share(&who, &com, crate::engine::share::tests::CER, s.expose()).unwrap()
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Invariant 2: any k of n shares recover R; k - 1 shares do not.
        #[test]
        fn any_k_of_n_recover_and_fewer_do_not(n in 2u8..=8, kk in 2u8..=8, seed in any::<u64>()) {
            let k = kk.min(n);
            let policy = Policy::from_toml(&sample_toml(n, k)).unwrap();
            let root = RootKey::generate();
            let shares = split(&root, k, n).unwrap();
            prop_assert_eq!(shares.len(), usize::from(n));
            // A pseudo-random subset of size k, from the seed.
            let mut idx: Vec<usize> = (0..usize::from(n)).collect();
            let mut s = seed;
            for i in (1..idx.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                idx.swap(i, (s >> 33) as usize % (i + 1));
            }
            let pick: Vec<&ShareBytes> = idx[..usize::from(k)].iter().map(|&i| &shares[i]).collect();
            let got = combine(Quorum::for_tests(&verified(&policy, &pick))).unwrap();
            prop_assert_eq!(got.expose(), root.expose());
            // k - 1 shares never make a `Quorum` (the engine builds one only at the
            // threshold); forced through the raw combiner, they give a value that is not R.
            let fewer = &pick[..usize::from(k) - 1];
            if fewer.len() >= 2 {
                let raw: Vec<Vec<u8>> = fewer.iter().map(|s| s.expose().to_vec()).collect();
                let wrong = Gf256::combine_array(&raw).unwrap();
                prop_assert_ne!(wrong.as_slice(), root.expose().as_slice());
            }
        }
    }

    #[test]
    fn split_assigns_x_in_order() {
        let shares = split(&RootKey::generate(), 3, 5).unwrap();
        let xs: Vec<u8> = shares.iter().map(ShareBytes::x).collect();
        assert_eq!(xs, vec![1, 2, 3, 4, 5]);
        assert!(split(&RootKey::generate(), 1, 5).is_err());
    }
}
