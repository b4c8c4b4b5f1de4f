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

/// Writes a new key pair into `dir`, refusing to overwrite.
pub fn write_pair(dir: &Path, key: &SignerKey) -> Result<(PathBuf, PathBuf), KeyFileError> {
    fs::create_dir_all(dir).map_err(|source| KeyFileError::Io { path: dir.to_owned(), source })?;
    let (key_path, vkey_path) = paths(dir, key.name());
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

pub fn read_signer(path: &Path) -> Result<SignerKey, KeyFileError> {
    let text =
        fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: path.to_owned(), source })?;
    SignerKey::parse(text.trim()).map_err(|source| KeyFileError::Key { path: path.to_owned(), source })
}

pub fn read_verifier(path: &Path) -> Result<VerifierKey, KeyFileError> {
    let text =
        fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: path.to_owned(), source })?;
    VerifierKey::parse(text.trim()).map_err(|source| KeyFileError::Key { path: path.to_owned(), source })
}
