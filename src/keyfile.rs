//! Key files: `NAME.key` holds the signer text (mode 0600), `NAME.vkey` the verifier text.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use assay_events::keys::{KeyError, SignerKey, VerifierKey};
use rand::RngCore;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Key { path: PathBuf, source: KeyError },
    #[error("{0} exists already; refusing to overwrite a key")]
    Exists(PathBuf),
    /// A private key where a public one belongs.
    #[error("{path} is a private signing key, where a public verifier key belongs{}", beside(.public))]
    PrivateGiven { path: PathBuf, public: Option<PathBuf> },
    /// A public key where a private one belongs.
    #[error("{path} is a public verifier key, where a private signing key belongs{}", beside(.private))]
    PublicGiven { path: PathBuf, private: Option<PathBuf> },
}

fn beside(other: &Option<PathBuf>) -> String {
    other.as_ref().map(|p| format!(" (use {})", p.display())).unwrap_or_default()
}

/// The text of a signer key starts so; a verifier key's never does (a name has no `+`).
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// `NAME.key` beside `NAME.vkey` and the other way round, when that file exists.
fn sibling(path: &Path, extension: &str) -> Option<PathBuf> {
    let other = path.with_extension(extension);
    (other != path && other.is_file()).then_some(other)
}

/// A fresh key named `name` from the operating system's randomness.
pub fn generate(name: &str) -> Result<SignerKey, KeyError> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    SignerKey::from_seed(name, seed)
}

/// Paths of `DIR/NAME.key` and `DIR/NAME.vkey`.
pub fn paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!("{name}.key")), dir.join(format!("{name}.vkey")))
}

/// Writes a new key pair into `dir` as `NAME.key`/`NAME.vkey`, refusing to overwrite.
pub fn write_pair(dir: &Path, key: &SignerKey) -> Result<(PathBuf, PathBuf), KeyFileError> {
    write_pair_as(dir, key.name(), key)
}

/// [`write_pair`] under the file name `stem` rather than the key's name (the ledger key is
/// named after the log's origin, which may hold `/`, and lives in `ledger.key`).
pub fn write_pair_as(dir: &Path, stem: &str, key: &SignerKey) -> Result<(PathBuf, PathBuf), KeyFileError> {
    fs::create_dir_all(dir).map_err(|source| KeyFileError::Io { path: dir.to_owned(), source })?;
    let (key_path, vkey_path) = paths(dir, stem);
    for p in [&key_path, &vkey_path] {
        if p.exists() {
            return Err(KeyFileError::Exists(p.clone()));
        }
    }
    write_private(&key_path, &format!("{}\n", key.to_text()))?;
    fs::write(&vkey_path, format!("{}\n", key.verifier().to_text()))
        .map_err(|source| KeyFileError::Io { path: vkey_path.clone(), source })?;
    Ok((key_path, vkey_path))
}

fn write_private(path: &Path, text: &str) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.to_owned(), source };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Reads a signer (private) key; a verifier key there is [`KeyFileError::PublicGiven`].
pub fn read_signer(path: &Path) -> Result<SignerKey, KeyFileError> {
    let text =
        fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: path.to_owned(), source })?;
    let text = text.trim();
    SignerKey::parse(text).map_err(|source| {
        if !text.starts_with(PRIVATE_PREFIX) && VerifierKey::parse(text).is_ok() {
            KeyFileError::PublicGiven { path: path.to_owned(), private: sibling(path, "key") }
        } else {
            KeyFileError::Key { path: path.to_owned(), source }
        }
    })
}

/// Reads a verifier (public) key; a signer key there is [`KeyFileError::PrivateGiven`] (and
/// its text is not repeated anywhere).
pub fn read_verifier(path: &Path) -> Result<VerifierKey, KeyFileError> {
    let text =
        fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: path.to_owned(), source })?;
    let text = text.trim();
    if text.starts_with(PRIVATE_PREFIX) {
        return Err(KeyFileError::PrivateGiven { path: path.to_owned(), public: sibling(path, "vkey") });
    }
    VerifierKey::parse(text).map_err(|source| KeyFileError::Key { path: path.to_owned(), source })
}

/// A fresh witness key named `name` from the operating system's randomness.
pub fn generate_cosigner(name: &str) -> Result<assay_events::cosignature::Cosigner, KeyError> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    assay_events::cosignature::Cosigner::from_seed(name, seed)
}

/// Writes a witness key to `path` (mode 0600), refusing to overwrite.
pub fn write_cosigner(path: &Path, key: &assay_events::cosignature::Cosigner) -> Result<(), KeyFileError> {
    if path.exists() {
        return Err(KeyFileError::Exists(path.to_owned()));
    }
    write_private(path, &format!("{}\n", key.to_text()))
}

/// Reads a witness signing key (`PRIVATE+KEY+name+id+base64(0x04 ‖ seed)`).
pub fn read_cosigner(path: &Path) -> Result<assay_events::cosignature::Cosigner, KeyFileError> {
    let text =
        fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: path.to_owned(), source })?;
    assay_events::cosignature::Cosigner::parse(text.trim())
        .map_err(|source| KeyFileError::Key { path: path.to_owned(), source })
}
