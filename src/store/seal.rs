//! Secrets at rest: every Secret the store writes — its object and its history entries —
//! is sealed with ChaCha20-Poly1305 under the node's key before it reaches LMDB, and opened
//! when read, so nothing outside the store ever sees ciphertext and the data file never
//! holds a Secret's value in plain text.
//!
//! The key: 32 random bytes in a file of mode 0600 (`<stateDir>/secrets.key`), made at the
//! first start. A sealed value is `MAGIC ‖ nonce (12) ‖ ciphertext ‖ tag (16)`; anything
//! else is plain JSON (a store from before sealing, sealed when it is opened).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The prefix of a sealed value.
pub const MAGIC: &[u8] = b"berth-sealed-v1:";
const NONCE: usize = 12;
/// Bound into every seal: a sealed value is a berth Secret, nothing else.
const AAD: &[u8] = b"berth secret";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot {action} the secrets key {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the secrets key {path} is {len} bytes, not 32: it is damaged; restore it from a backup (berth backup holds it)"
    )]
    BadKey { path: String, len: usize },
    #[error(
        "a sealed Secret does not open with this node's key (a wrong secrets key, or damage): {0}"
    )]
    Open(String),
    #[error("cannot seal a Secret: {0}")]
    Seal(String),
}

/// The node's key.
pub struct SecretsKey(LessSafeKey);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(..)")
    }
}

impl SecretsKey {
    /// Reads the key at `path`, or makes one there (mode 0600) when there is none.
    pub fn load_or_create(path: &Path) -> Result<SecretsKey, SealError> {
        let io = |action| {
            let path = path.display().to_string();
            move |source| SealError::Io {
                action,
                path,
                source,
            }
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut key)
                    .map_err(|_| SealError::Io {
                        action: "make",
                        path: path.display().to_string(),
                        source: std::io::Error::other("no system randomness"),
                    })?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io("create"))?;
                f.write_all(&key).map_err(io("write"))?;
                f.sync_all().map_err(io("write"))?;
                tracing::info!(path = %path.display(), "created the secrets key");
                key.to_vec()
            }
            Err(e) => return Err(io("read")(e)),
        };
        if bytes.len() != 32 {
            return Err(SealError::BadKey {
                path: path.display().to_string(),
                len: bytes.len(),
            });
        }
        // Only root may read it, whatever it was made with.
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<SecretsKey, SealError> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| SealError::Seal("unusable key".into()))?;
        Ok(SecretsKey(LessSafeKey::new(unbound)))
    }

    /// Seals `plain`.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Seal("no system randomness".into()))?;
        let mut body = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut body,
            )
            .map_err(|_| SealError::Seal("encryption failed".into()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a sealed value.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let rest = sealed
            .strip_prefix(MAGIC)
            .ok_or_else(|| SealError::Open("not sealed".into()))?;
        if rest.len() < NONCE {
            return Err(SealError::Open("too short".into()));
        }
        let (nonce, body) = rest.split_at(NONCE);
        let mut nonce_bytes = [0u8; NONCE];
        nonce_bytes.copy_from_slice(nonce);
        let mut buf = body.to_vec();
        let plain = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(AAD),
                &mut buf,
            )
            .map_err(|_| SealError::Open("authentication failed".into()))?;
        Ok(plain.to_vec())
    }
}

/// Whether `bytes` is a sealed value.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_tampering_or_another_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secrets.key");
        let key = SecretsKey::load_or_create(&path).expect("key");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = key
            .seal(b"{\"data\":{\"p\":\"aHVudGVyMg==\"}}")
            .expect("seal");
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(12).any(|w| w == b"aHVudGVyMg=="));
        assert_eq!(
            key.open(&sealed).expect("open"),
            b"{\"data\":{\"p\":\"aHVudGVyMg==\"}}"
        );
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(key.open(&bad).is_err());
        // The same key again from its file; another key cannot open it.
        let again = SecretsKey::load_or_create(&path).expect("reload");
        assert!(again.open(&sealed).is_ok());
        let other = SecretsKey::load_or_create(&dir.path().join("other.key")).expect("other");
        assert!(other.open(&sealed).is_err());
        std::fs::write(&path, b"short").expect("write");
        assert!(matches!(
            SecretsKey::load_or_create(&path),
            Err(SealError::BadKey { len: 5, .. })
        ));
    }
}
