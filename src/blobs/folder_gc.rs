//! Retention in a folder store (`gc.rs` says what is removed and why that is safe).
//!
//! A blob is removed by renaming it into `tmp/` first, then reading its age: an upload of the
//! same bytes either refreshed its time before the rename (it is seen young and linked back) or
//! finds its name gone and links its own copy (`folder::keep`).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::UNIX_EPOCH;

use super::folder::sync_dir;
use super::removal::Removal;
use super::{BlobError, BlobName};

/// The modification time of `meta`, in ns since the epoch (0 when unknown: old).
fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn entries(dir: &Path) -> Result<std::fs::ReadDir, BlobError> {
    std::fs::read_dir(dir).map_err(|e| BlobError::io(dir.display(), e))
}

pub(super) fn collect(
    root: &Path,
    cited: &BTreeSet<BlobName>,
    cutoff_ns: i64,
    dry_run: bool,
    mut seen: impl FnMut(&Removal) -> Result<(), BlobError>,
) -> Result<(), BlobError> {
    if !root.is_dir() {
        return Ok(());
    }
    for fan in entries(root)? {
        let fan = fan.map_err(|e| BlobError::io(root.display(), e))?;
        let fan_name = fan.file_name();
        let is_fan = fan_name.len() == 2 && fan.file_type().is_ok_and(|t| t.is_dir());
        if !is_fan {
            continue;
        }
        let dir = fan.path();
        for entry in entries(&dir)? {
            let entry = entry.map_err(|e| BlobError::io(dir.display(), e))?;
            let Some(name) = entry.file_name().to_str().and_then(|n| BlobName::parse(n).ok()) else {
                continue;
            };
            let meta = entry.metadata().map_err(|e| BlobError::io(entry.path().display(), e))?;
            if cited.contains(&name) || !meta.is_file() || mtime_ns(&meta) >= cutoff_ns {
                continue;
            }
            if dry_run || remove_aged(root, &dir, &name, cutoff_ns)? {
                seen(&Removal::Blob { name, bytes: meta.len() })?;
            }
        }
    }
    let tmp = root.join("tmp");
    if !tmp.is_dir() {
        return Ok(());
    }
    for entry in entries(&tmp)? {
        let entry = entry.map_err(|e| BlobError::io(tmp.display(), e))?;
        let path = entry.path();
        let leftover = path.extension().is_some_and(|x| x == "part" || x == "gc");
        let meta = entry.metadata().map_err(|e| BlobError::io(path.display(), e))?;
        if !leftover || !meta.is_file() || mtime_ns(&meta) >= cutoff_ns {
            continue;
        }
        if !dry_run {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(BlobError::io(path.display(), e)),
            }
        }
        seen(&Removal::Part { path, bytes: meta.len() })?;
    }
    if !dry_run {
        sync_dir(&tmp)?;
    }
    Ok(())
}

/// Removes the blob `name` (in the fan-out folder `dir`) if it is still older than the cutoff
/// once moved aside; true when removed.
fn remove_aged(root: &Path, dir: &Path, name: &BlobName, cutoff_ns: i64) -> Result<bool, BlobError> {
    let hex = name.to_hex();
    let target = dir.join(&hex);
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| BlobError::io(tmp.display(), e))?;
    let aside = tmp.join(format!("{hex}.gc"));
    match std::fs::rename(&target, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(BlobError::io(target.display(), e)),
    }
    let meta = match std::fs::metadata(&aside) {
        Ok(meta) => meta,
        // Another collection running at once took it as a leftover.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(BlobError::io(aside.display(), e)),
    };
    let removed = mtime_ns(&meta) < cutoff_ns;
    if !removed {
        // Stored again meanwhile: back under its name (unless the new upload already is).
        match std::fs::hard_link(&aside, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(BlobError::io(target.display(), e)),
        }
    }
    match std::fs::remove_file(&aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BlobError::io(aside.display(), e)),
    }
    sync_dir(dir)?;
    Ok(removed)
}
