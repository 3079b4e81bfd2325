//! The secret key file and sealing with it: AES-256-GCM, a fresh random nonce per value, and a
//! versioned text form naming the key, so that keys can rotate while old values stay readable.
//!
//! A key file holds one key a line, `slipway-secret-key v1 <id> <base64 key>`; the first is the
//! one new values are sealed with, the others (during a rotation) only open old values. A sealed
//! value is `slipway:sealed:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use aes_gcm::aead::common::getrandom;
use aes_gcm::aead::{Aead as _, Generate as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::Digest as _;

/// What every sealed value starts with.
pub const SEALED_PREFIX: &str = "slipway:sealed:";

/// The version of the sealed form this code writes.
const SEALED_V1: &str = "slipway:sealed:v1:";

/// The first word of a key line, and its version.
const KEY_LINE: &str = "slipway-secret-key v1";

const NONCE_LEN: usize = 12;

/// Why a key line could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadKeyLine {
    /// Not `slipway-secret-key v1 ID KEY`.
    Shape,
    /// The key is not base64.
    Base64,
    /// The key is not 32 bytes long.
    Length,
    /// The id does not match the key (the line was edited or mixed up).
    Id,
}

impl std::fmt::Display for BadKeyLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadKeyLine::Shape => "expected `slipway-secret-key v1 ID KEY`",
            BadKeyLine::Base64 => "the key is not base64",
            BadKeyLine::Length => "the key is not 256 bits (32 bytes) long",
            BadKeyLine::Id => "the id does not belong to the key",
        })
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadSealed {
    /// Not in the sealed form, or a version this build does not know.
    Form,
    /// Sealed with a key the key file does not hold.
    UnknownKey,
    /// The key is known but the value does not open: altered, or moved from another row.
    Tampered,
    /// It opened but is not UTF-8 text.
    NotText,
}

impl std::fmt::Display for BadSealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadSealed::Form => "it is not in a sealed form this build knows",
            BadSealed::UnknownKey => "it was sealed with a key the key file does not hold",
            BadSealed::Tampered => {
                "it does not open with its key (altered, or moved from another row)"
            }
            BadSealed::NotText => "it opened to something that is not text",
        })
    }
}

/// Errors of the key file and of sealing.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file exists but could not be read.
    #[error("failed to read the secret key file {path}")]
    Read {
        /// Key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key file could not be written.
    #[error("failed to write the secret key file {path}")]
    Write {
        /// Key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of the key file is not a key.
    #[error("{path}:{line}: not a slipway secret key: {reason}")]
    Malformed {
        /// Key file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: BadKeyLine,
    },
    /// The key file holds no key.
    #[error("the secret key file {path} holds no key")]
    Empty {
        /// Key file.
        path: PathBuf,
    },
    /// The database's Secrets are sealed with a key, and the key file is missing.
    #[error(
        "the run database holds Secrets sealed with key {key_id}, but the secret key file {path} does not exist"
    )]
    Missing {
        /// Where the key file was looked for.
        path: PathBuf,
        /// The key the database needs.
        key_id: String,
    },
    /// The database's Secrets are sealed with a key the key file does not hold.
    #[error(
        "the run database holds Secrets sealed with key {key_id}, but the secret key file {path} holds {held} instead"
    )]
    WrongKey {
        /// Key file.
        path: PathBuf,
        /// The key the database needs.
        key_id: String,
        /// The ids the file holds.
        held: String,
    },
    /// A sealed value could not be opened.
    #[error("the sealed value in {place} cannot be read: {reason}")]
    Sealed {
        /// Which row.
        place: String,
        /// Why.
        reason: BadSealed,
    },
    /// Other processes run runs with the current key in memory; they would seal with it after
    /// a rotation dropped it.
    #[error("{} run(s) are in progress in other slipway processes (pids {})", .pids.len(), .pids.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))]
    InUse {
        /// Their processes.
        pids: Vec<i64>,
    },
    /// The system's random number generator failed.
    #[error("the system's random number generator failed")]
    Random(#[source] getrandom::Error),
    /// AES-GCM refused the input (longer than it can seal).
    #[error("failed to seal a value in {place}")]
    Seal {
        /// Which row.
        place: String,
    },
}

/// One key.
struct SecretKey {
    id: String,
    bytes: Key<Aes256Gcm>,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("SecretKey").field("id", &self.id).finish()
    }
}

impl SecretKey {
    fn new(bytes: Key<Aes256Gcm>) -> SecretKey {
        SecretKey {
            id: key_id(&bytes),
            cipher: Aes256Gcm::new(&bytes),
            bytes,
        }
    }

    fn line(&self) -> String {
        format!("{KEY_LINE} {} {}\n", self.id, STANDARD.encode(self.bytes))
    }
}

/// A key's id: the first 8 bytes of a SHA-256 of it, in hex. It names the key in sealed values
/// and error messages without saying anything useful about it.
fn key_id(key: &[u8]) -> String {
    let digest = sha2::Sha256::new()
        .chain_update(b"slipway secret key id\0")
        .chain_update(key)
        .finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The keys of a key file: the first seals, all open.
#[derive(Debug)]
pub struct Keyring {
    path: PathBuf,
    keys: Vec<SecretKey>,
}

impl Keyring {
    /// Reads the key file; `None` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Keyring>, KeyError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(KeyError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason| KeyError::Malformed {
                path: path.to_path_buf(),
                line: n + 1,
                reason,
            };
            let rest = line.strip_prefix(KEY_LINE).ok_or(bad(BadKeyLine::Shape))?;
            let mut words = rest.split_whitespace();
            let (Some(id), Some(key), None) = (words.next(), words.next(), words.next()) else {
                return Err(bad(BadKeyLine::Shape));
            };
            let bytes = STANDARD.decode(key).map_err(|_| bad(BadKeyLine::Base64))?;
            let bytes = Key::<Aes256Gcm>::try_from(bytes.as_slice())
                .map_err(|_| bad(BadKeyLine::Length))?;
            let key = SecretKey::new(bytes);
            if key.id != id {
                return Err(bad(BadKeyLine::Id));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(KeyError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Some(Keyring {
            path: path.to_path_buf(),
            keys,
        }))
    }

    /// Reads the key file, or creates it (0600, with one new key) when it does not exist. Two
    /// processes creating it at once end up with the same key: the file appears whole or not at
    /// all, and the one that comes second reads the first one's.
    pub fn load_or_create(path: &Path) -> Result<Keyring, KeyError> {
        if let Some(k) = Keyring::load(path)? {
            return Ok(k);
        }
        let ring = Keyring {
            path: path.to_path_buf(),
            keys: vec![SecretKey::new(
                Key::<Aes256Gcm>::try_generate().map_err(KeyError::Random)?,
            )],
        };
        let tmp = ring.write_temp()?;
        // A hard link fails when the name exists: no key file is ever replaced here.
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(ring),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Keyring::load(path)?
                .ok_or_else(|| KeyError::Empty {
                    path: path.to_path_buf(),
                }),
            Err(source) => Err(KeyError::Write {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of the key new values are sealed with.
    pub fn current(&self) -> &str {
        &self.keys[0].id
    }

    /// Whether this key is held.
    pub fn holds(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// The ids held, comma-separated, for messages.
    pub fn ids(&self) -> String {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        ids.join(", ")
    }

    /// A new keyring with a fresh key first and these keys after it (written to the file: the
    /// old keys stay until every value is sealed again).
    pub fn rotated(&self) -> Result<Keyring, KeyError> {
        let mut keys = vec![SecretKey::new(
            Key::<Aes256Gcm>::try_generate().map_err(KeyError::Random)?,
        )];
        keys.extend(self.keys.iter().map(|k| SecretKey::new(k.bytes)));
        let ring = Keyring {
            path: self.path.clone(),
            keys,
        };
        ring.replace_file()?;
        Ok(ring)
    }

    /// Only the current key, written to the file: the end of a rotation.
    pub fn retire_old_keys(&mut self) -> Result<(), KeyError> {
        if self.keys.len() > 1 {
            self.keys.truncate(1);
            self.replace_file()?;
        }
        Ok(())
    }

    /// Writes the keys to a new file next to the key file (0600, synced), returning its path.
    fn write_temp(&self) -> Result<PathBuf, KeyError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "secret.key".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let werr = |source| KeyError::Write {
            path: self.path.clone(),
            source,
        };
        if !dir.as_os_str().is_empty() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(werr)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(werr)?;
        let mut text = String::from(
            "# slipway's key for Secrets at rest: keep it private, and back it up with the data.\n",
        );
        for k in &self.keys {
            text.push_str(&k.line());
        }
        let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(werr(e));
        }
        Ok(tmp)
    }

    /// Replaces the key file whole (rename), so a crash leaves the old file or the new one.
    fn replace_file(&self) -> Result<(), KeyError> {
        let tmp = self.write_temp()?;
        std::fs::rename(&tmp, &self.path).map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            KeyError::Write {
                path: self.path.clone(),
                source,
            }
        })?;
        if let Some(dir) = self.path.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Narrows the key file to its owner when it is wider (a file copied into place); a file
    /// this process may not change (a read-only mount) is left as it is.
    pub fn tighten(&self) {
        if let Ok(meta) = std::fs::metadata(&self.path)
            && meta.permissions().mode() & 0o077 != 0
            && let Err(e) =
                std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(path = %self.path.display(), error = %e, "the secret key file is readable by others and could not be narrowed");
        }
    }

    /// Seals `plain` with the current key; `place` (the row it goes to) is bound to it, so a
    /// sealed value copied to another row does not open there.
    pub fn seal(&self, plain: &str, place: &str) -> Result<String, KeyError> {
        let key = &self.keys[0];
        let nonce = Nonce::try_generate().map_err(KeyError::Random)?;
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: place.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Seal {
                place: place.to_string(),
            })?;
        let mut body = Vec::with_capacity(NONCE_LEN + sealed.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_V1}{}:{}",
            key.id,
            URL_SAFE_NO_PAD.encode(body)
        ))
    }

    /// Opens a value [`Keyring::seal`] made for `place`.
    pub fn open(&self, sealed: &str, place: &str) -> Result<String, KeyError> {
        let bad = |reason| KeyError::Sealed {
            place: place.to_string(),
            reason,
        };
        let rest = sealed.strip_prefix(SEALED_V1).ok_or(bad(BadSealed::Form))?;
        let (id, body) = rest.split_once(':').ok_or(bad(BadSealed::Form))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(bad(BadSealed::UnknownKey))?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| bad(BadSealed::Form))?;
        if body.len() < NONCE_LEN {
            return Err(bad(BadSealed::Form));
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| bad(BadSealed::Form))?;
        let plain = key
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: place.as_bytes(),
                },
            )
            .map_err(|_| bad(BadSealed::Tampered))?;
        String::from_utf8(plain).map_err(|_| bad(BadSealed::NotText))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_round_trips_and_each_seal_differs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ring = Keyring::load_or_create(&dir.path().join("k")).expect("key");
        let a = ring.seal("hunter2", "here").expect("seal");
        let b = ring.seal("hunter2", "here").expect("seal");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("hunter2"));
        assert!(a.starts_with(&format!("{SEALED_V1}{}:", ring.current())));
        assert_eq!(ring.open(&a, "here").expect("open"), "hunter2");
        let moved = ring.open(&a, "elsewhere").expect_err("bound to its row");
        assert!(matches!(
            moved,
            KeyError::Sealed {
                reason: BadSealed::Tampered,
                ..
            }
        ));
    }

    #[test]
    fn the_key_file_is_private_and_read_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("secret.key");
        let ring = Keyring::load_or_create(&path).expect("key");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Keyring::load_or_create(&path).expect("key");
        assert_eq!(again.current(), ring.current());
        let sealed = ring.seal("v", "p").expect("seal");
        assert_eq!(again.open(&sealed, "p").expect("open"), "v");
    }

    #[test]
    fn a_rotated_ring_opens_old_values_and_seals_with_the_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.key");
        let old = Keyring::load_or_create(&path).expect("key");
        let sealed = old.seal("v", "p").expect("seal");
        let mut new = old.rotated().expect("rotate");
        assert_ne!(new.current(), old.current());
        assert_eq!(new.open(&sealed, "p").expect("open"), "v");
        let on_disk = Keyring::load(&path).expect("load").expect("exists");
        assert_eq!(on_disk.ids(), new.ids());
        new.retire_old_keys().expect("retire");
        let on_disk = Keyring::load(&path).expect("load").expect("exists");
        assert_eq!(on_disk.ids(), new.current());
        assert!(matches!(
            on_disk.open(&sealed, "p"),
            Err(KeyError::Sealed {
                reason: BadSealed::UnknownKey,
                ..
            })
        ));
    }

    #[test]
    fn malformed_key_files_say_which_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.key");
        for (text, reason) in [
            ("# c\nnot a key\n", BadKeyLine::Shape),
            ("slipway-secret-key v1 00 !!!\n", BadKeyLine::Base64),
            ("slipway-secret-key v1 00 AAAA\n", BadKeyLine::Length),
            (
                "slipway-secret-key v1 0000000000000000 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
                BadKeyLine::Id,
            ),
        ] {
            std::fs::write(&path, text).expect("write");
            match Keyring::load(&path) {
                Err(KeyError::Malformed {
                    line, reason: r, ..
                }) => {
                    assert_eq!(r, reason, "{text}");
                    assert_eq!(line, if text.starts_with('#') { 2 } else { 1 });
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        std::fs::write(&path, "# nothing\n").expect("write");
        assert!(matches!(Keyring::load(&path), Err(KeyError::Empty { .. })));
    }
}
