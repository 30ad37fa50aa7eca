//! RSA-2048 keys for the simulated EK and AK, and a pool of pre-generated ones.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};

use crate::SimError;

/// An RSA-2048 private key (PKCS#8 DER), cheap to clone.
#[derive(Clone)]
pub struct SimKey {
    pkcs8: Arc<[u8]>,
    modulus: Arc<[u8]>,
}

impl core::fmt::Debug for SimKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimKey")
            .field(
                "modulus_prefix",
                &vouch_wire::hex_lower(self.modulus.get(..8).unwrap_or_default()),
            )
            .finish_non_exhaustive()
    }
}

impl SimKey {
    /// Generate a fresh key (about 0.1 s of CPU).
    pub fn generate() -> Result<Self, SimError> {
        let pair =
            KeyPair::generate(KeySize::Rsa2048).map_err(|_| SimError::Crypto("RSA keygen"))?;
        let der = pair
            .as_der()
            .map_err(|_| SimError::Crypto("PKCS#8 encode"))?;
        Self::from_pair(&pair, der.as_ref())
    }

    /// A key from PKCS#8 DER; it must be RSA-2048 with exponent 65537 (what a TPM makes).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, SimError> {
        let pair = KeyPair::from_pkcs8(pkcs8).map_err(|e| SimError::KeyRejected(e.to_string()))?;
        Self::from_pair(&pair, pkcs8)
    }

    fn from_pair(pair: &KeyPair, pkcs8: &[u8]) -> Result<Self, SimError> {
        let public =
            PublicKeyComponents::<Vec<u8>>::from(aws_lc_rs::signature::KeyPair::public_key(pair));
        let n = strip(&public.n);
        let e = strip(&public.e);
        if n.len() != 256 || e != [1, 0, 1] {
            return Err(SimError::KeyRejected(format!(
                "need RSA-2048 with exponent 65537, got a {}-bit modulus",
                n.len().saturating_mul(8)
            )));
        }
        Ok(Self {
            pkcs8: pkcs8.into(),
            modulus: n.into(),
        })
    }

    /// The PKCS#8 DER.
    #[must_use]
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The 256-byte big-endian modulus.
    #[must_use]
    pub fn modulus(&self) -> &[u8] {
        &self.modulus
    }

    pub(crate) fn signing_pair(&self) -> Result<KeyPair, SimError> {
        KeyPair::from_pkcs8(&self.pkcs8).map_err(|e| SimError::KeyRejected(e.to_string()))
    }

    /// The PKCS#1 `RSAPublicKey` DER, for the EK certificate.
    pub(crate) fn rsa_public_key_der(&self) -> Result<Vec<u8>, SimError> {
        let pair = self.signing_pair()?;
        Ok(aws_lc_rs::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec())
    }
}

fn strip(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or_default()
}

/// Pre-generated keys for simulating many TPMs: RSA key generation is the cost of creating one.
///
/// Keys are handed out by index, so a fleet simulation decides itself whether hosts share keys
/// (`pool.key(i % pool.len())`) or each gets its own. A pool cached in a directory
/// ([`KeyPool::load_or_generate`]) makes repeated runs start instantly.
#[derive(Debug, Clone, Default)]
pub struct KeyPool {
    keys: Vec<SimKey>,
}

impl KeyPool {
    /// Generate `count` keys on every available core.
    pub fn generate(count: usize) -> Result<Self, SimError> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let per = count.div_ceil(threads.max(1)).max(1);
        let mut keys = Vec::with_capacity(count);
        std::thread::scope(|s| {
            let mut handles = Vec::new();
            let mut left = count;
            while left > 0 {
                let n = per.min(left);
                left = left.saturating_sub(n);
                handles
                    .push(s.spawn(move || (0..n).map(|_| SimKey::generate()).collect::<Vec<_>>()));
            }
            for h in handles {
                let batch = h
                    .join()
                    .map_err(|_| SimError::Crypto("key generation thread panicked"))?;
                for k in batch {
                    keys.push(k?);
                }
            }
            Ok::<(), SimError>(())
        })?;
        Ok(Self { keys })
    }

    /// Load `count` keys from `dir/key-N.pk8`, generating (and saving) the missing ones.
    pub fn load_or_generate(dir: &Path, count: usize) -> Result<Self, SimError> {
        std::fs::create_dir_all(dir).map_err(SimError::io(dir))?;
        let mut keys = Vec::with_capacity(count);
        let mut missing = Vec::new();
        for i in 0..count {
            let path = dir.join(format!("key-{i}.pk8"));
            match std::fs::read(&path) {
                Ok(der) => keys.push(Some(SimKey::from_pkcs8(&der)?)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    keys.push(None);
                    missing.push(i);
                }
                Err(e) => return Err(SimError::io(path)(e)),
            }
        }
        let fresh = Self::generate(missing.len())?;
        for (i, key) in missing.into_iter().zip(fresh.keys) {
            crate::store::write_atomic(&dir.join(format!("key-{i}.pk8")), key.pkcs8())?;
            if let Some(slot) = keys.get_mut(i) {
                *slot = Some(key);
            }
        }
        Ok(Self {
            keys: keys.into_iter().flatten().collect(),
        })
    }

    /// A pool of the given keys.
    #[must_use]
    pub fn from_keys(keys: Vec<SimKey>) -> Self {
        Self { keys }
    }

    /// Key number `i`.
    #[must_use]
    pub fn key(&self, i: usize) -> Option<&SimKey> {
        self.keys.get(i)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the pool holds no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
