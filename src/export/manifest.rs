//! `manifest.json`: what an export folder holds and the signed checkpoint it is consistent
//! with. Each export writes `manifest-<size>.json` and the same bytes to `manifest.json`; a later
//! `--since` export adds its files to the list and never rewrites earlier files.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ExportError;

/// `format` of every manifest this code writes and reads. v2 keeps the verdicts at the
/// export's checkpoint in one file, `verdicts/current.parquet`, replaced by each `--since`
/// step, and each step's snapshot under `verdicts_history/checkpoint=<size>/`; v1 had one
/// snapshot per step under `verdicts/checkpoint=<size>/`, so a glob over `verdicts/`
/// counted every claim once per step.
pub const FORMAT: &str = "assay-export/v2";

/// The format before v2.
const FORMAT_V1: &str = "assay-export/v1";
pub const MANIFEST: &str = "manifest.json";

/// One Parquet file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the export folder, `/`-separated.
    pub path: String,
    /// `events`, a typed table's name, `verdicts` or `verdicts_history`.
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    /// blake3 of the file, hex.
    pub blake3: String,
    /// Seqs of the first and last row (None for snapshot tables and empty files).
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The checkpoint size of the export step that wrote the file.
    pub export_size: u64,
}

/// One export run: records `[from, size)`, consistent with the checkpoint signed at `size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub from: u64,
    pub size: u64,
    /// The signed checkpoint note at `size`, verbatim.
    pub checkpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub origin: String,
    /// The ledger's verifier key (C2SP text), as genesis names it. Informational: verifiers
    /// take the key from the user, never from here.
    pub ledger_key: String,
    /// Seqs exported: `0..=last_seq`.
    pub first_seq: u64,
    pub last_seq: u64,
    /// Records exported = the checkpoint's tree size.
    pub size: u64,
    /// The signed checkpoint note at `size`, verbatim (the latest step's).
    pub checkpoint: String,
    /// Record hash of seq `size - 1`, hex: the next export's chain continues from it.
    pub record_hash: String,
    /// The compact range of the tree of `size` leaves (base64 hashes, largest subtree first):
    /// the next export's tree continues from it.
    pub frontier: Vec<String>,
    /// Every export step, oldest first.
    pub steps: Vec<Step>,
    /// Every file of every step.
    pub files: Vec<FileEntry>,
    /// The manifest of the previous step, if any.
    pub previous: Option<String>,
}

impl Manifest {
    /// The file name this manifest is kept under besides `manifest.json`.
    pub fn versioned_name(&self) -> String {
        format!("manifest-{}.json", self.size)
    }

    pub fn read(dir: &Path) -> Result<Option<Manifest>, ExportError> {
        let path = dir.join(MANIFEST);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ExportError::io(&path, e)),
        };
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| ExportError::Invalid(format!("{}: {e}", path.display())))?;
        if m.format == FORMAT_V1 {
            return Err(ExportError::Invalid(format!(
                "{}: an {FORMAT_V1} export (one verdicts snapshot per step under verdicts/), which \
                 this assay neither verifies nor extends; export the ledger again into an empty \
                 folder ({FORMAT})",
                path.display()
            )));
        }
        if m.format != FORMAT {
            return Err(ExportError::Invalid(format!(
                "{}: format {:?}, expected {FORMAT:?}",
                path.display(),
                m.format
            )));
        }
        Ok(Some(m))
    }

    /// Writes `manifest-<size>.json` and `manifest.json` (each via a temporary file and rename).
    pub fn write(&self, dir: &Path) -> Result<(), ExportError> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| ExportError::Invalid(e.to_string()))?;
        text.push('\n');
        for name in [self.versioned_name(), MANIFEST.to_owned()] {
            let path = dir.join(&name);
            let tmp = dir.join(format!("{name}.tmp"));
            std::fs::write(&tmp, &text).map_err(|e| ExportError::io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| ExportError::io(&path, e))?;
        }
        Ok(())
    }
}
