//! The upload half of `bench blobs`, as a user runs it: a real `assay serve` (the given binary,
//! a fresh SQLite ledger with a registered worker key, its evidence folder beside it) takes the
//! evidence folder from `assay evidence put --server`. The server's peak resident memory
//! (`VmHWM` of /proc/PID/status, its high-water mark since it started) is read once the upload
//! has been acknowledged, before the server is stopped.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::Context;

use super::{Cpu, append, proc_cpu_secs};

/// One upload of the folder over HTTP.
pub struct Upload {
    pub seconds: f64,
    /// CPU seconds of `assay evidence put` and of the server during the upload: what the
    /// upload costs, steadier than its wall time on a shared machine.
    pub client_cpu_s: f64,
    pub server_cpu_s: f64,
    /// The server's peak resident memory.
    pub server_peak_rss_bytes: u64,
}

/// Kills the server when the measurement ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves a fresh ledger in `dir` and uploads `files` into it with `assay evidence put`.
pub async fn upload(assay: &Path, dir: &Path, files: &[PathBuf]) -> anyhow::Result<Upload> {
    std::fs::create_dir_all(dir)?;
    let db = dir.join("ledger.db");
    let keys = dir.join("keys");
    let (ledger_key, worker) = append::ledger(&db, &keys, None).await?;
    let (worker_key, _) = assay::keyfile::write_pair(&keys, &worker)?;
    let mut server = Server(
        Command::new(assay)
            .args(["serve", "--db"])
            .arg(&db)
            .arg("--ledger-key")
            .arg(&ledger_key)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting assay serve")?,
    );
    let stdout = server.0.stdout.take().context("the server's stdout")?;
    let mut url = String::new();
    std::io::BufReader::new(stdout).read_line(&mut url)?;
    let url = url.trim();
    anyhow::ensure!(url.starts_with("http://"), "assay serve printed {url:?}, not its URL");

    let pid = server.0.id().to_string();
    let (server_cpu0, client_cpu0) =
        (proc_cpu_secs(&pid, Cpu::Own), proc_cpu_secs("self", Cpu::WaitedChildren));
    let t = Instant::now();
    let status = Command::new(assay)
        .args(["evidence", "put", "--server", url, "--key"])
        .arg(&worker_key)
        .args(files)
        .stdout(Stdio::null())
        .status()
        .context("running assay evidence put")?;
    let seconds = t.elapsed().as_secs_f64();
    let client_cpu_s = proc_cpu_secs("self", Cpu::WaitedChildren) - client_cpu0;
    let server_cpu_s = proc_cpu_secs(&pid, Cpu::Own) - server_cpu0;
    anyhow::ensure!(status.success(), "assay evidence put --server failed: {status}");
    let server_peak_rss_bytes = peak_rss_bytes(server.0.id())?;
    Ok(Upload { seconds, client_cpu_s, server_cpu_s, server_peak_rss_bytes })
}

/// `VmHWM` of the process `pid`, in bytes.
fn peak_rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .with_context(|| format!("/proc/{pid}/status has no VmHWM"))?;
    Ok(kib * 1024)
}
