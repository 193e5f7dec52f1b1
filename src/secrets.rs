//! Secret environment values: sealed with XChaCha20-Poly1305 under the server's key before they
//! are stored, opened only to start a run. The key is 32 random bytes in a file, written as 64
//! hex digits (`openssl rand -hex 32`): created beside a SQLite database on its first start,
//! given with `--secret-key-file` (the same file on every node) on PostgreSQL.
//!
//! A sealed value is `base64(nonce | ciphertext | tag)` with a random 24-byte nonce per value;
//! the stack's uid and the variable's name are its associated data, so a value copied to
//! another stack or name in the database does not open.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::Deserialize;

use crate::domain::SealedEnv;

const NONCE_LEN: usize = 24;

/// A value that must not be shown: its `Debug` prints `***`, and a request that gives one of
/// the wrong type is told so without its value being echoed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Secret(s)),
            _ => Err(serde::de::Error::custom("a secret value must be a string")),
        }
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for sealing it or handing it to a run.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The server's key for secret values. Cheap to clone; its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SecretKey {
    cipher: Arc<XChaCha20Poly1305>,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "PostgreSQL needs --secret-key-file (CRONSTACK_SECRET_KEY_FILE): the key that seals secret env values, the same file on every node; create one with `openssl rand -hex 32 > cronstack.key; chmod 600 cronstack.key`"
    )]
    Required,
    #[error(
        "the secret key file {0} does not exist; create it with `openssl rand -hex 32 > {0}; chmod 600 {0}` (on PostgreSQL every node needs the same file)"
    )]
    Missing(PathBuf),
    #[error(
        "the secret key file {0} does not exist, but the database holds secret env values sealed with a key: restore that key file"
    )]
    Lost(PathBuf),
    #[error("cannot read the secret key file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("cannot create the secret key file {0}: {1}")]
    Create(PathBuf, std::io::Error),
    #[error("the secret key file {0} must hold 64 hex digits (32 bytes), as `openssl rand -hex 32` writes")]
    Format(PathBuf),
    #[error(
        "the key in {0} does not open the secret env values stored in the database (stack {1}): it is not the key they were sealed with"
    )]
    Wrong(PathBuf, String),
}

/// A sealed value that does not open: another key, or a damaged value.
#[derive(Debug, thiserror::Error)]
#[error(
    "the secret env value {name} does not open with this server's key (sealed with another key, or damaged)"
)]
pub struct OpenError {
    pub name: String,
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_bytes(rand::random::<[u8; 32]>())
    }

    fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretKey { cipher: Arc::new(XChaCha20Poly1305::new(&Key::from(bytes))) }
    }

    /// The key a key file's text holds: 64 hex digits, surrounding whitespace ignored.
    fn from_hex(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = hex::decode(text.trim()).ok()?.try_into().ok()?;
        Some(Self::from_bytes(bytes))
    }

    /// Reads a key file. One that others may read gets a warning (it is not refused: the
    /// operator may have reasons, e.g. a group-readable secrets mount).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Read(path.into(), e))?;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the secret key file is readable by others: chmod 600 it");
        }
        Self::from_hex(&text).ok_or_else(|| KeyError::Format(path.into()))
    }

    /// Creates a key file with a fresh key, readable by its owner only. Another process
    /// creating it at the same moment wins: its key is read back.
    pub fn create(path: &Path) -> Result<Self, KeyError> {
        let key = rand::random::<[u8; 32]>();
        let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
        match file {
            Ok(mut f) => {
                let written = writeln!(f, "{}", hex::encode(key)).and_then(|()| f.sync_all());
                written.map_err(|e| KeyError::Create(path.into(), e))?;
                tracing::info!(path = %path.display(), "created the secret key file: keep it with the database's backups");
                Ok(Self::from_bytes(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(KeyError::Create(path.into(), e)),
        }
    }

    /// Seals `value` of variable `name` of the stack `stack_uid`.
    pub fn seal(&self, stack_uid: &str, name: &str, value: &Secret) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let aad = associated_data(stack_uid, name);
        let payload = Payload { msg: value.expose().as_bytes(), aad: &aad };
        let sealed =
            self.cipher.encrypt(&XNonce::from(nonce), payload).expect("encrypting into memory cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        BASE64.encode(out)
    }

    /// Opens what [`seal`](Self::seal) made for the same stack and name.
    pub fn open(&self, stack_uid: &str, name: &str, sealed: &str) -> Result<Secret, OpenError> {
        let fail = || OpenError { name: name.to_string() };
        let bytes = BASE64.decode(sealed).map_err(|_| fail())?;
        if bytes.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| fail())?;
        let aad = associated_data(stack_uid, name);
        let plain = self
            .cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| fail())?;
        String::from_utf8(plain).map(Secret).map_err(|_| fail())
    }

    /// Every value of a stack's secret env, opened, by name.
    pub fn open_env(&self, stack_uid: &str, env: &SealedEnv) -> Result<Vec<(String, Secret)>, OpenError> {
        env.iter().map(|(name, sealed)| Ok((name.clone(), self.open(stack_uid, name, sealed)?))).collect()
    }
}

fn associated_data(stack_uid: &str, name: &str) -> Vec<u8> {
    format!("cronstack secret_env\0{stack_uid}\0{name}").into_bytes()
}

/// A sealed value found in the database, to check the key against at start.
pub struct StoredSample {
    pub stack_uid: String,
    pub name: String,
    pub sealed: String,
}

/// The server's key: from `--secret-key-file`, else (SQLite) the file beside the database
/// (`cronstack.db` → `cronstack.key`), created when it does not exist yet; a database in
/// memory gets a key for the process's life. PostgreSQL needs the flag: every node must use
/// the same key. A key file is only created while the database holds no sealed value
/// (`sample`), and the key must open that value: the server refuses to start otherwise rather
/// than run jobs without their secrets.
pub fn server_key(
    flag: Option<&Path>,
    sqlite_file: Option<&Path>,
    postgres: bool,
    sample: Option<&StoredSample>,
) -> Result<(SecretKey, Option<PathBuf>), KeyError> {
    let path = match (flag, sqlite_file) {
        (Some(path), _) => path.to_path_buf(),
        (None, _) if postgres => return Err(KeyError::Required),
        (None, Some(db)) => db.with_extension("key"),
        (None, None) => return Ok((SecretKey::generate(), None)),
    };
    let key = if path.exists() {
        SecretKey::load(&path)?
    } else if sample.is_some() {
        return Err(KeyError::Lost(path));
    } else if postgres {
        return Err(KeyError::Missing(path));
    } else {
        SecretKey::create(&path)?
    };
    if let Some(s) = sample
        && key.open(&s.stack_uid, &s.name, &s.sealed).is_err()
    {
        return Err(KeyError::Wrong(path, s.stack_uid.clone()));
    }
    Ok((key, Some(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_stack_and_name() {
        let key = SecretKey::generate();
        let value = Secret::new("hunter2-and-more");
        let sealed = key.seal("uid1", "API_KEY", &value);
        assert!(!sealed.contains("hunter2"));
        assert_eq!(key.open("uid1", "API_KEY", &sealed).unwrap(), value);
        // A fresh nonce each time.
        assert_ne!(key.seal("uid1", "API_KEY", &value), sealed);
        assert!(key.open("uid2", "API_KEY", &sealed).is_err(), "another stack");
        assert!(key.open("uid1", "OTHER", &sealed).is_err(), "another name");
        assert!(SecretKey::generate().open("uid1", "API_KEY", &sealed).is_err(), "another key");
        for bad in ["", "not base64!", "AAAA"] {
            assert!(key.open("uid1", "API_KEY", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nothing_secret_shows_in_debug() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "***");
        assert_eq!(format!("{:?}", SecretKey::generate()), "SecretKey(..)");
    }

    #[test]
    fn key_files_are_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cronstack.db");
        let (key, path) = server_key(None, Some(&db), false, None).unwrap();
        let path = path.unwrap();
        assert_eq!(path, dir.path().join("cronstack.key"));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim().len(), 64);
        let sample = StoredSample {
            stack_uid: "u".into(),
            name: "N".into(),
            sealed: key.seal("u", "N", &Secret::new("value")),
        };
        // Read back on the next start, and checked against what is stored.
        server_key(None, Some(&db), false, Some(&sample)).unwrap();
        // Another key, or none while values are stored: refused.
        let other = dir.path().join("other.key");
        std::fs::write(&other, format!("{}\n", hex::encode([7u8; 32]))).unwrap();
        let err = server_key(Some(&other), Some(&db), false, Some(&sample)).unwrap_err();
        assert!(matches!(err, KeyError::Wrong(..)), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = server_key(None, Some(&db), false, Some(&sample)).unwrap_err();
        assert!(matches!(err, KeyError::Lost(..)), "{err}");
        // PostgreSQL: the flag, and an existing file.
        assert!(matches!(server_key(None, None, true, None).unwrap_err(), KeyError::Required));
        let missing = dir.path().join("missing.key");
        assert!(matches!(server_key(Some(&missing), None, true, None).unwrap_err(), KeyError::Missing(_)));
        std::fs::write(&missing, "zz").unwrap();
        assert!(matches!(server_key(Some(&missing), None, true, None).unwrap_err(), KeyError::Format(_)));
    }
}
