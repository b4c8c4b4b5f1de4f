//! `assay completions SHELL` and `assay man [--out DIR]`: generated from the command tree, so
//! they always describe the binary that prints them.

use std::path::PathBuf;

use anyhow::Context;
use clap_complete::Shell;

use super::{Exit, command};

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for, e.g. `assay completions bash > ~/.local/share/bash-completion/completions/assay`.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Write one page per command and subcommand (assay.1, assay-init.1, assay-key-new.1, …)
    /// into DIR (created if absent) instead of printing the top page.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn completions(a: CompletionsArgs) -> anyhow::Result<Exit> {
    let mut cmd = command();
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "assay", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(Exit::Ok)
}

pub fn man(a: ManArgs) -> anyhow::Result<Exit> {
    let Some(dir) = a.out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command().disable_help_subcommand(true))
            .render(&mut page)
            .context("rendering the manual page")?;
        out!("{}", String::from_utf8_lossy(&page));
        return Ok(Exit::Ok);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(command(), &dir)
        .with_context(|| format!("writing pages into {}", dir.display()))?;
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("assay") && n.ends_with(".1"))
        .collect();
    pages.sort();
    outln!("wrote {} pages to {}", pages.len(), dir.display());
    Ok(Exit::Ok)
}
