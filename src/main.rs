//! The `assay` command line. Exit status: 0 ok, 1 verification failure, 2 usage, bad input or
//! I/O error.

#![forbid(unsafe_code)]

mod cli;
mod demo;

use std::process::ExitCode;

use clap::Parser;

/// Records, pages and envelopes are allocated on one thread and freed on another; mimalloc
/// handles that pattern far better than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // While the process has one thread: `sqlite3_config` must not run beside other SQLite
    // calls (opening a store installs it too, for the library's other users).
    assay::store::sqlite_alloc::install();
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASSAY_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(cli::Exit::Ok) => ExitCode::SUCCESS,
        Ok(cli::Exit::VerifyFailed) => ExitCode::from(1),
        // The reader of our output went away (`assay log | head`): what it wanted was written.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::from(2)
        }
    }
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<cli::StdoutClosed>().is_some()
}

/// The error and its causes, `: `-joined, each said once: many errors already print their
/// source in their own message, and `{:#}` would repeat it.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain().take(16) {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
