//! Where the CUDA driver, NVRTC and NVML libraries are looked for, in order.
//!
//! A pure search over an injected environment (variables and a filesystem root), so that tests
//! lay out folders like a CUDA 12 toolkit, a CUDA 13 toolkit or the pip wheels and see what is
//! found. Loading is elsewhere: NVRTC is opened by the path found here (`nvrtc.rs`), the driver
//! and NVML are opened by path too (see ARCHITECTURE.md, "Finding the CUDA libraries").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The NVRTC file names tried in each folder, newest first: CUDA 13 and 12 sonames, then the
/// unversioned name a toolkit's -dev package adds.
pub const NVRTC_NAMES: [&str; 3] = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"];
/// The driver's soname (installed with the kernel driver, never by a toolkit).
pub const DRIVER_NAME: &str = "libcuda.so.1";
/// NVML's soname (installed with the driver).
pub const NVML_NAME: &str = "libnvidia-ml.so.1";
/// The variable that names the NVRTC library to use, skipping the search.
pub const NVRTC_OVERRIDE: &str = "ASSAY_NVRTC";

/// Most folders one glob (`/usr/local/cuda*`, `lib/python3*`) contributes, so a crowded
/// filesystem cannot make the search unbounded.
const GLOB_MAX: usize = 64;
/// Most `PATH` / `LD_LIBRARY_PATH` entries looked at.
const PATH_ENTRIES_MAX: usize = 256;

/// One of the three libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CudaLibrary {
    /// `libcuda.so.1`.
    Driver,
    /// `libnvrtc.so.{13,12}`.
    Nvrtc,
    /// `libnvidia-ml.so.1`.
    Nvml,
}

/// What the search reads: environment variables and the filesystem below `root` (`/` in use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchEnv {
    /// The variables that matter (`PATH`, `LD_LIBRARY_PATH`, `CUDA_HOME`, `CUDA_PATH`,
    /// `ASSAY_NVRTC`).
    pub vars: BTreeMap<String, String>,
    /// Where the fixed system folders (`/usr/local/cuda*`, `/usr/lib/…`) are looked for.
    pub root: PathBuf,
}

impl SearchEnv {
    /// This process's environment and the real filesystem.
    pub fn from_process() -> SearchEnv {
        let vars = ["PATH", "LD_LIBRARY_PATH", "CUDA_HOME", "CUDA_PATH", NVRTC_OVERRIDE]
            .into_iter()
            .filter_map(|name| std::env::var(name).ok().map(|value| (name.to_owned(), value)))
            .collect();
        SearchEnv { vars, root: PathBuf::from("/") }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|value| !value.is_empty())
    }

    fn under_root(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }
}

/// One path looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The file.
    pub path: PathBuf,
    /// Why it was looked at (`ASSAY_NVRTC`, `CUDA_HOME`, `pip wheel`, …).
    pub origin: String,
    /// Whether a file is there.
    pub exists: bool,
}

/// The paths looked at for one library, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibrarySearch {
    /// Which library.
    pub library: CudaLibrary,
    /// Every path looked at, in the order tried.
    pub candidates: Vec<Candidate>,
}

impl LibrarySearch {
    /// The first path that exists.
    pub fn found(&self) -> Option<&Candidate> {
        self.candidates.iter().find(|candidate| candidate.exists)
    }

    /// The NVRTC to load for a driver supporting CUDA `driver_major`: the first found whose
    /// soname's major is not newer than the driver's (PTX from a newer NVRTC is refused by an
    /// older driver), else the first found. Without a driver version, the first found.
    pub fn choose(&self, driver_major: Option<u32>) -> Option<&Candidate> {
        let fits = |candidate: &&Candidate| match (driver_major, soname_major(&candidate.path)) {
            (Some(driver), Some(nvrtc)) => nvrtc <= driver,
            _ => true,
        };
        self.candidates.iter().filter(|candidate| candidate.exists).find(fits).or_else(|| self.found())
    }
}

/// Lists, in order, where `library` is looked for under `env`, and which of those exist.
pub fn search(library: CudaLibrary, env: &SearchEnv) -> LibrarySearch {
    let mut folders: Vec<(PathBuf, String)> = Vec::new();
    let names: &[&str] = match library {
        CudaLibrary::Driver => &[DRIVER_NAME],
        CudaLibrary::Nvml => &[NVML_NAME],
        CudaLibrary::Nvrtc => &NVRTC_NAMES,
    };
    if library == CudaLibrary::Nvrtc {
        // The override is the whole search: a named file that is missing is a mistake to
        // report, not a reason to load some other NVRTC.
        if let Some(named) = env.var(NVRTC_OVERRIDE) {
            let path = PathBuf::from(named);
            let exists = path.is_file();
            let candidates = vec![Candidate { path, origin: NVRTC_OVERRIDE.to_owned(), exists }];
            return LibrarySearch { library, candidates };
        }
        for variable in ["CUDA_HOME", "CUDA_PATH"] {
            if let Some(home) = env.var(variable) {
                toolkit_folders(Path::new(home), variable, &mut folders);
            }
        }
    }
    for entry in split_paths(env.var("LD_LIBRARY_PATH")) {
        folders.push((entry, "LD_LIBRARY_PATH".to_owned()));
    }
    if library == CudaLibrary::Nvrtc {
        for site in python_site_packages(env) {
            folders.push((site.join("nvidia/cu13/lib"), "pip wheel (nvidia-cuda-nvrtc, CUDA 13)".to_owned()));
            folders
                .push((site.join("nvidia/cuda_nvrtc/lib"), "pip wheel (nvidia-cuda-nvrtc-cu12)".to_owned()));
        }
        let mut toolkits = glob_dirs(&env.under_root("usr/local"), "cuda");
        // `cuda` (the alternatives link) first, then the versions newest first.
        toolkits.sort_by_key(|toolkit| std::cmp::Reverse(toolkit_rank(toolkit)));
        for toolkit in toolkits {
            toolkit_folders(&toolkit, "/usr/local/cuda*", &mut folders);
        }
    }
    for system in system_folders() {
        folders.push((env.under_root(system), "system library folder".to_owned()));
    }
    let mut candidates: Vec<Candidate> = Vec::new();
    for (folder, origin) in folders {
        for name in names {
            let path = folder.join(name);
            if candidates.iter().any(|seen| seen.path == path) {
                continue;
            }
            let exists = path.is_file();
            candidates.push(Candidate { path, origin: origin.clone(), exists });
        }
    }
    LibrarySearch { library, candidates }
}

/// The library folders of a toolkit at `home`: `lib64`, `targets/*/lib`, `lib`.
fn toolkit_folders(home: &Path, origin: &str, folders: &mut Vec<(PathBuf, String)>) {
    folders.push((home.join("lib64"), origin.to_owned()));
    for target in glob_dirs(&home.join("targets"), "") {
        folders.push((target.join("lib"), origin.to_owned()));
    }
    folders.push((home.join("lib"), origin.to_owned()));
}

/// `cuda` sorts above every `cuda-X.Y`; versions compare numerically.
fn toolkit_rank(path: &Path) -> (bool, Vec<u32>) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let version = name.trim_start_matches("cuda").trim_start_matches('-');
    let parts = version.split('.').filter_map(|part| part.parse().ok()).collect();
    (name == "cuda", parts)
}

/// The folders in `parent` whose names start with `prefix`, sorted, at most [`GLOB_MAX`].
fn glob_dirs(parent: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_str().is_some_and(|name| name.starts_with(prefix)))
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .take(GLOB_MAX)
        .collect();
    dirs.sort();
    dirs
}

fn split_paths(value: Option<&str>) -> Vec<PathBuf> {
    value
        .into_iter()
        .flat_map(|value| value.split(':'))
        .filter(|entry| !entry.is_empty())
        .take(PATH_ENTRIES_MAX)
        .map(PathBuf::from)
        .collect()
}

/// The site-packages of the Python environments on `PATH`: for each `bin` folder holding a
/// `python3`, `../lib/python3*/site-packages` (venvs, conda, the system Python, pyenv).
fn python_site_packages(env: &SearchEnv) -> Vec<PathBuf> {
    let mut sites = Vec::new();
    for bin in split_paths(env.var("PATH")) {
        if !bin.join("python3").exists() && !bin.join("python").exists() {
            continue;
        }
        let Some(prefix) = bin.parent() else { continue };
        // pyenv's shims stand for every installed version: `<root>/versions/*`.
        let prefixes = if bin.ends_with("shims") {
            glob_dirs(&prefix.join("versions"), "")
        } else {
            vec![prefix.to_path_buf()]
        };
        for prefix in prefixes {
            add_sites(&prefix, &mut sites);
        }
    }
    sites
}

/// `PREFIX/lib*/python3*/{site,dist}-packages` that exist, once each.
fn add_sites(prefix: &Path, sites: &mut Vec<PathBuf>) {
    for lib in ["lib", "lib64"] {
        for python in glob_dirs(&prefix.join(lib), "python3") {
            for site in ["site-packages", "dist-packages"] {
                // Canonical, so `/bin` and `/usr/bin` (merged /usr) give one site.
                let Ok(site) = python.join(site).canonicalize() else { continue };
                if site.is_dir() && !sites.contains(&site) {
                    sites.push(site);
                }
            }
        }
    }
}

/// The distribution's library folders, this architecture's multiarch folder first (so nothing
/// here assumes x86-64), then containers' and WSL's driver folders.
fn system_folders() -> [&'static str; 6] {
    let multiarch =
        if cfg!(target_arch = "aarch64") { "usr/lib/aarch64-linux-gnu" } else { "usr/lib/x86_64-linux-gnu" };
    [multiarch, "usr/lib64", "usr/lib", "usr/local/nvidia/lib64", "usr/lib/wsl/lib", "usr/local/lib"]
}

/// The major version in an NVRTC file name (`libnvrtc.so.13` → 13), if it has one.
pub fn soname_major(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("libnvrtc.so.")?.split('.').next()?.parse().ok()
}
