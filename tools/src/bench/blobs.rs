//! `bench blobs`: an evidence folder (many small files and a few large ones) stored into the
//! evidence store beside a SQLite ledger, in process, and uploaded to a real `assay serve` with
//! `assay evidence put --server` (`blobs_http.rs`), each against the limit: the same files
//! copied with a plain copy and an fsync per file, in the same round, on the same disk. The
//! issue's targets: a ratio (copy time / store or upload time) of at least 0.7, and a server
//! under 64 MiB of resident memory during a 1 GiB upload.

use std::path::{Path, PathBuf};
use std::time::Instant;

use assay::blobs::{BLOB_BYTES_MAX_DEFAULT, BlobStore};

use futures_util::StreamExt;

use super::median;

#[derive(clap::Args)]
pub struct BlobsArgs {
    /// Bytes in the evidence folder, all files together.
    #[arg(long, default_value_t = 1 << 30)]
    bytes: u64,
    /// How many small (16 KiB) files; the rest of the bytes go to 4 large files.
    #[arg(long, default_value_t = 2000)]
    small_files: u64,
    /// Rounds; each measures the copy, the local store, the copy again and the upload.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The `assay` binary that serves and uploads (default: beside this one).
    #[arg(long)]
    assay: Option<PathBuf>,
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
    anyhow::ensure!(a.rounds >= 1, "--rounds must be at least 1");
    let assay = super::append::assay_binary(a.assay.clone())?;
    let dir = tempfile::tempdir_in(".")?;
    let source = dir.path().join("evidence");
    std::fs::create_dir_all(&source)?;
    let files = make_folder(&source, &a)?;
    let mib = a.bytes as f64 / f64::from(1 << 20);
    println!(
        "bench blobs: {} files, {} bytes ({mib:.0} MiB), {} rounds; {}",
        files.len(),
        a.bytes,
        a.rounds,
        assay.display()
    );
    let (mut store_ratios, mut upload_ratios, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    let mut upload_cpus = Vec::new();
    for round in 0..a.rounds {
        // Each path runs after a copy of its own, so each ratio compares neighbours in time.
        let here = dir.path().join(format!("round-{round}"));
        let copy_s = copy(&files, &here.join("copies"))?;
        let store_s = store(&files, &here.join("local.db")).await?;
        let copy2_s = copy(&files, &here.join("copies"))?;
        let up = super::blobs_http::upload(&assay, &here.join("served"), &files).await?;
        check_stored(&here.join("served").join("ledger.db.blobs"), files.len())?;
        std::fs::remove_dir_all(&here)?;
        let rss_mib = up.server_peak_rss_bytes as f64 / f64::from(1 << 20);
        println!(
            "round {round}: copy {copy_s:>6.2} s | store (folder) {store_s:>6.2} s, ratio {:.2} | \
             copy {copy2_s:>6.2} s | upload over HTTP {:>6.2} s ({:>6.1} MiB/s), ratio {:.2}, \
             CPU {:.2} s client + {:.2} s server, server peak RSS {rss_mib:.1} MiB",
            copy_s / store_s,
            up.seconds,
            mib / up.seconds,
            copy2_s / up.seconds,
            up.client_cpu_s,
            up.server_cpu_s,
        );
        upload_cpus.push(up.client_cpu_s + up.server_cpu_s);
        store_ratios.push(copy_s / store_s);
        upload_ratios.push(copy2_s / up.seconds);
        peaks.push(rss_mib);
    }
    let max_peak = peaks.iter().copied().fold(0.0, f64::max);
    println!(
        "ratio  evidence store (folder) / plain copy: {:.2} median (target ≥ 0.7)",
        median(store_ratios)
    );
    println!(
        "ratio  upload over HTTP / plain copy:        {:.2} median (target ≥ 0.7)",
        median(upload_ratios)
    );
    println!("cpu    upload, client and server together:  {:.2} s median", median(upload_cpus));
    println!("memory server peak RSS during an upload:    {max_peak:.1} MiB at most (target < 64 MiB)");
    Ok(())
}

/// The limit: each file copied (`std::fs::copy`, in the kernel) and fsynced, the folder fsynced
/// once at the end; the seconds it took. The copies are removed after.
fn copy(files: &[PathBuf], copies: &Path) -> anyhow::Result<f64> {
    std::fs::create_dir_all(copies)?;
    let t = Instant::now();
    for (i, file) in files.iter().enumerate() {
        let target = copies.join(format!("{i}"));
        std::fs::copy(file, &target)?;
        std::fs::File::open(&target)?.sync_all()?;
    }
    std::fs::File::open(copies)?.sync_all()?;
    let seconds = t.elapsed().as_secs_f64();
    std::fs::remove_dir_all(copies)?;
    Ok(seconds)
}

/// The files stored in process, [`assay::blobs::PUTS_IN_FLIGHT`] at once, into the folder beside a (not created) ledger at `ledger`.
async fn store(files: &[PathBuf], ledger: &Path) -> anyhow::Result<f64> {
    let blobs = BlobStore::open(&ledger.to_string_lossy(), BLOB_BYTES_MAX_DEFAULT).await?;
    let t = Instant::now();
    // As `assay evidence put --db` stores them: several at once.
    let mut puts = std::pin::pin!(blobs.put_files(files));
    while let Some(put) = puts.next().await {
        put?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// The upload must have stored every file (distinct contents: one blob each).
fn check_stored(root: &Path, want: usize) -> anyhow::Result<()> {
    let mut found = 0;
    for fan in std::fs::read_dir(root)? {
        let fan = fan?;
        if fan.file_name() != "tmp" && fan.file_type()?.is_dir() {
            found += std::fs::read_dir(fan.path())?.count();
        }
    }
    anyhow::ensure!(found == want, "the server stores {found} blobs, not {want}");
    Ok(())
}
