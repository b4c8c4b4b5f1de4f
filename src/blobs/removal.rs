//! What retention removes, shared by the walks of both backends (`gc.rs`, `folder_gc.rs`).

use std::path::PathBuf;

use super::BlobName;

/// One thing retention removes (or would remove).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Blob {
        name: BlobName,
        bytes: u64,
    },
    /// A temporary upload file left behind (folder backend only).
    Part {
        path: PathBuf,
        bytes: u64,
    },
}

impl Removal {
    pub fn bytes(&self) -> u64 {
        match self {
            Removal::Blob { bytes, .. } | Removal::Part { bytes, .. } => *bytes,
        }
    }
}
