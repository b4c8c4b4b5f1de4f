//! `bench blobs`: an evidence folder (many small files and a few large ones) stored into the
//! evidence store beside a SQLite ledger, against the limit: the same files copied with a plain
//! copy and an fsync per file, in the same run, on the same disk. The target is a ratio
//! (copy time / store time) of at least 0.7.

use std::path::{Path, PathBuf};
use std::time::Instant;

use assay::blobs::{BLOB_BYTES_MAX_DEFAULT, BlobStore};

#[derive(clap::Args)]
pub struct BlobsArgs {
    /// Bytes in the evidence folder, all files together.
    #[arg(long, default_value_t = 1 << 30)]
    bytes: u64,
    /// How many small (16 KiB) files; the rest of the bytes go to 4 large files.
    #[arg(long, default_value_t = 2000)]
    small_files: u64,
}

const SMALL_BYTES: u64 = 16 << 10;
const LARGE_FILES: u64 = 4;

/// Writes the folder: distinct contents (a counter in every 8 bytes), so nothing is stored once
/// for another file.
fn make_folder(dir: &Path, a: &BlobsArgs) -> anyhow::Result<Vec<PathBuf>> {
    use std::io::Write;
    let small_total = a.small_files * SMALL_BYTES;
    anyhow::ensure!(small_total < a.bytes, "--bytes must exceed the small files' {small_total} bytes");
    let large = (a.bytes - small_total) / LARGE_FILES;
    let mut files = Vec::new();
    let mut counter = 0u64;
    let sizes = (0..a.small_files).map(|_| SMALL_BYTES).chain((0..LARGE_FILES).map(|_| large));
    for (i, size) in sizes.enumerate() {
        let path = dir.join(format!("f{i:06}.bin"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for _ in 0..size / 8 {
            counter += 1;
            out.write_all(&counter.to_le_bytes())?;
        }
        out.flush()?;
        files.push(path);
    }
    Ok(files)
}

pub async fn run(a: BlobsArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(".")?;
    let source = dir.path().join("evidence");
    std::fs::create_dir_all(&source)?;
    let files = make_folder(&source, &a)?;
    println!("bench blobs: {} files, {} bytes", files.len(), a.bytes);

    let copies = dir.path().join("copies");
    std::fs::create_dir_all(&copies)?;
    let t = Instant::now();
    for (i, file) in files.iter().enumerate() {
        let target = copies.join(format!("{i}"));
        std::fs::copy(file, &target)?;
        std::fs::File::open(&target)?.sync_all()?;
    }
    std::fs::File::open(&copies)?.sync_all()?;
    let copy_s = t.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&copies)?;

    let ledger = dir.path().join("ledger.db");
    let blobs = BlobStore::open(&ledger.to_string_lossy(), BLOB_BYTES_MAX_DEFAULT).await?;
    let t = Instant::now();
    for file in &files {
        blobs.put_file(file).await?;
    }
    let store_s = t.elapsed().as_secs_f64();
    let mib = a.bytes as f64 / f64::from(1 << 20);
    println!("limit  plain copy + fsync per file: {copy_s:>7.2} s  {:>7.1} MiB/s", mib / copy_s);
    println!("real   evidence store (folder):      {store_s:>7.2} s  {:>7.1} MiB/s", mib / store_s);
    println!("ratio  {:.2} (target ≥ 0.7)", copy_s / store_s);
    Ok(())
}
