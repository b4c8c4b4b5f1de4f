//! `assay run cell --json`: the child process of `run campaign`. Reads one cell request per
//! line on stdin and answers each with one outcome line on stdout; exits after a sticky
//! CUDA fault so that the parent starts a fresh process (and context) for the next cell.
//!
//! `ASSAY_TEST_ABORT_KERNEL=<kernel>` makes it abort (SIGABRT) when asked to run that kernel:
//! the test suite uses it to exercise a child that dies mid-cell.

use anyhow::Context;
use assay_kernels::campaign::{ServeHooks, serve_cells};

use crate::cli::Exit;

/// The environment variable naming a kernel whose cells abort the child (for tests).
pub const ABORT_KERNEL_ENV: &str = "ASSAY_TEST_ABORT_KERNEL";

#[derive(clap::Args)]
pub struct CellArgs {
    /// Speak JSON lines (the only protocol).
    #[arg(long, required = true)]
    json: bool,
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    device: u32,
}

pub async fn run(a: CellArgs) -> anyhow::Result<Exit> {
    anyhow::ensure!(a.json, "run cell speaks JSON lines only; pass --json");
    let hooks = ServeHooks {
        ordinal: a.device as usize,
        abort_kernel: std::env::var(ABORT_KERNEL_ENV).ok().filter(|k| !k.is_empty()),
    };
    tokio::task::spawn_blocking(move || {
        serve_cells(std::io::stdin().lock(), std::io::stdout().lock(), &hooks)
    })
    .await
    .context("the cell task failed")?
    .context("serving cells")?;
    Ok(Exit::Ok)
}
