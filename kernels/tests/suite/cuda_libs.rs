//! Library discovery against folders laid out like a CUDA 12 toolkit, a CUDA 13 toolkit and
//! the pip wheels (empty files: the search only looks for them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assay_kernels::cuda::libs::{CudaLibrary, SearchEnv, search, soname_major};

fn touch(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, b"").expect("touch");
}

fn env(root: &Path, vars: &[(&str, String)]) -> SearchEnv {
    let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    SearchEnv { vars, root: root.to_path_buf() }
}

fn found(library: CudaLibrary, env: &SearchEnv) -> Option<PathBuf> {
    search(library, env).found().map(|candidate| candidate.path.clone())
}

#[test]
fn a_cuda_12_toolkit_without_the_dev_package_is_found_by_soname() {
    let root = tempfile::tempdir().expect("tmp");
    let nvrtc = root.path().join("usr/local/cuda-12.8/targets/x86_64-linux/lib/libnvrtc.so.12");
    touch(&nvrtc);
    let env = env(root.path(), &[]);
    assert_eq!(found(CudaLibrary::Nvrtc, &env), Some(nvrtc.clone()));
    assert_eq!(soname_major(&nvrtc), Some(12));
    // Nothing else was laid out: driver and NVML are missing, and the search says where it looked.
    let driver = search(CudaLibrary::Driver, &env);
    assert!(driver.found().is_none());
    assert!(driver.candidates.iter().all(|c| c.path.ends_with("libcuda.so.1")));
    assert!(driver.candidates.iter().any(|c| c.path.starts_with(root.path().join("usr/lib"))));
}

#[test]
fn a_cuda_13_toolkit_is_preferred_over_an_older_one_and_the_link_over_both() {
    let root = tempfile::tempdir().expect("tmp");
    let old = root.path().join("usr/local/cuda-12.4/lib64/libnvrtc.so.12");
    let new = root.path().join("usr/local/cuda-13.0/targets/sbsa-linux/lib/libnvrtc.so.13");
    touch(&old);
    touch(&new);
    let env_without_link = env(root.path(), &[]);
    assert_eq!(found(CudaLibrary::Nvrtc, &env_without_link), Some(new.clone()));
    let linked = root.path().join("usr/local/cuda/lib64/libnvrtc.so.12");
    touch(&linked);
    assert_eq!(found(CudaLibrary::Nvrtc, &env(root.path(), &[])), Some(linked));
    // CUDA_HOME comes before the fixed folders.
    let home = root.path().join("opt/cuda13");
    let in_home = home.join("lib64/libnvrtc.so.13");
    touch(&in_home);
    let env = env(root.path(), &[("CUDA_HOME", home.display().to_string())]);
    let search = search(CudaLibrary::Nvrtc, &env);
    assert_eq!(search.found().map(|c| c.path.clone()), Some(in_home));
    assert_eq!(search.found().map(|c| c.origin.as_str()), Some("CUDA_HOME"));
    // Every folder is tried with the 13, 12 and unversioned names.
    for name in ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"] {
        assert!(search.candidates.iter().any(|c| c.path == home.join("lib64").join(name)), "{name}");
    }
}

#[test]
fn the_pip_wheels_of_a_python_environment_on_path_are_searched() {
    let root = tempfile::tempdir().expect("tmp");
    let venv = root.path().join("home/lab/venv");
    touch(&venv.join("bin/python3"));
    let site = venv.join("lib/python3.12/site-packages");
    let cu12 = site.join("nvidia/cuda_nvrtc/lib/libnvrtc.so.12");
    touch(&cu12);
    let path = format!("/nonexistent:{}", venv.join("bin").display());
    let env12 = env(root.path(), &[("PATH", path.clone())]);
    assert_eq!(found(CudaLibrary::Nvrtc, &env12), Some(cu12));
    let cu13 = site.join("nvidia/cu13/lib/libnvrtc.so.13");
    touch(&cu13);
    let env13 = env(root.path(), &[("PATH", path)]);
    let search = search(CudaLibrary::Nvrtc, &env13);
    assert_eq!(search.found().map(|c| c.path.clone()), Some(cu13));
    assert!(search.found().expect("found").origin.contains("pip wheel"));
    // pyenv: the shims folder stands for each installed version.
    let pyenv = root.path().join("home/lab/.pyenv");
    touch(&pyenv.join("shims/python3"));
    let in_version =
        pyenv.join("versions/3.12.1/lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13");
    touch(&in_version);
    let shims = env(root.path(), &[("PATH", pyenv.join("shims").display().to_string())]);
    assert_eq!(found(CudaLibrary::Nvrtc, &shims), Some(in_version));
    // A folder on PATH without a Python contributes nothing.
    let bare = env(root.path(), &[("PATH", root.path().join("usr/bin").display().to_string())]);
    assert_eq!(found(CudaLibrary::Nvrtc, &bare), None);
}

#[test]
fn the_override_is_the_whole_search_and_a_missing_file_is_reported() {
    let root = tempfile::tempdir().expect("tmp");
    touch(&root.path().join("usr/local/cuda/lib64/libnvrtc.so.12"));
    let named = root.path().join("elsewhere/libnvrtc.so.13.0.48");
    let env_missing = env(root.path(), &[("ASSAY_NVRTC", named.display().to_string())]);
    let missing = search(CudaLibrary::Nvrtc, &env_missing);
    assert_eq!(missing.candidates.len(), 1);
    assert!(missing.found().is_none(), "a missing override must not fall through to another NVRTC");
    touch(&named);
    assert_eq!(found(CudaLibrary::Nvrtc, &env_missing), Some(named.clone()));
    assert_eq!(soname_major(&named), Some(13));
}

#[test]
fn driver_and_nvml_are_found_in_the_system_and_ld_library_path_folders() {
    let root = tempfile::tempdir().expect("tmp");
    let arch = if cfg!(target_arch = "aarch64") { "aarch64" } else { "x86_64" };
    let driver = root.path().join(format!("usr/lib/{arch}-linux-gnu/libcuda.so.1"));
    touch(&driver);
    let extra = root.path().join("opt/driver");
    let nvml = extra.join("libnvidia-ml.so.1");
    touch(&nvml);
    let env = env(root.path(), &[("LD_LIBRARY_PATH", extra.display().to_string())]);
    assert_eq!(found(CudaLibrary::Driver, &env), Some(driver));
    let nvml_search = search(CudaLibrary::Nvml, &env);
    assert_eq!(nvml_search.found().map(|c| c.origin.as_str()), Some("LD_LIBRARY_PATH"));
    assert_eq!(nvml_search.found().map(|c| c.path.clone()), Some(nvml));
}

#[test]
fn loading_a_file_that_is_not_nvrtc_is_an_error_naming_it_not_a_crash() {
    use assay_kernels::cuda::nvrtc::{Nvrtc, NvrtcError, open_found};
    let root = tempfile::tempdir().expect("tmp");
    // An empty file where NVRTC should be: found by the search, refused by the loader.
    let fake = root.path().join("usr/local/cuda/lib64/libnvrtc.so.13");
    touch(&fake);
    let error = open_found(&env(root.path(), &[]), None).expect_err("an empty file is no library");
    let NvrtcError::NotLoaded(reason) = &error else { panic!("{error:?}") };
    assert!(reason.contains(&fake.display().to_string()), "{reason}");
    // A real library without NVRTC's calls (the C library, found by the dynamic linker).
    match Nvrtc::open(Path::new("libc.so.6")) {
        Err(NvrtcError::MissingSymbol { symbol, .. }) => assert_eq!(symbol, "nvrtcVersion"),
        other => panic!("{other:?}"),
    }
    // A missing override is reported as such, never replaced by another NVRTC.
    let named = root.path().join("nowhere/libnvrtc.so.12");
    let error = open_found(&env(root.path(), &[("ASSAY_NVRTC", named.display().to_string())]), None)
        .expect_err("missing override");
    assert!(error.to_string().contains("none exists"), "{error}");
}

#[test]
fn an_nvrtc_older_than_the_gpu_names_both_versions() {
    use assay_kernels::cuda::nvrtc::NvrtcError;
    let error = NvrtcError::ArchUnsupported { arch: 121, nvrtc_version: "12.8".into(), supported: 120 };
    let text = error.to_string();
    assert!(text.contains("NVRTC 12.8") && text.contains("sm_121") && text.contains("sm_120"), "{text}");
    assert!(text.contains("ASSAY_NVRTC"), "the fix is named: {text}");
}

/// Where an NVRTC is installed (a toolkit, or `pip install nvidia-cuda-nvrtc` in a Python
/// environment on PATH), the binding compiles for real: no GPU is needed to make PTX.
#[test]
fn a_real_nvrtc_compiles_every_built_in_kernel_for_each_architecture_it_lists() {
    use assay_kernels::cuda::gpu_architecture;
    use assay_kernels::cuda::nvrtc::{NvrtcError, open_found};
    use assay_kernels::cuda::sources::SOURCES;
    let nvrtc = match open_found(&SearchEnv::from_process(), None) {
        Ok(nvrtc) => nvrtc,
        Err(error) => {
            eprintln!("no NVRTC here, so its binding was not exercised: {error}");
            return;
        }
    };
    let (major, _) = nvrtc.version();
    assert!(major >= 12, "NVRTC {}", nvrtc.version_text());
    let archs = nvrtc.supported_archs().expect("supported archs");
    assert!(!archs.is_empty() && archs.windows(2).all(|w| w[0] < w[1]), "{archs:?}");
    let newest = *archs.last().expect("one");
    let capability = (newest / 10, newest % 10);
    nvrtc.check_arch(capability).expect("its own newest architecture");
    for source in SOURCES {
        let options = [gpu_architecture(capability)];
        let ptx = nvrtc
            .compile_ptx(source.source, source.file, &options)
            .unwrap_or_else(|e| panic!("{}: {e}", source.file));
        assert!(
            ptx.contains(&format!(".target sm_{newest}")),
            "{}: {}",
            source.file,
            &ptx[..ptx.len().min(400)]
        );
    }
    // A device newer than this NVRTC is the named fault, with both versions.
    match nvrtc.check_arch((99, 9)) {
        Err(NvrtcError::ArchUnsupported { arch: 999, nvrtc_version, supported }) => {
            assert_eq!(nvrtc_version, nvrtc.version_text());
            assert_eq!(supported, newest);
        }
        other => panic!("{other:?}"),
    }
    // A source NVRTC refuses comes back with its log, not a crash.
    match nvrtc.compile_ptx("extern \"C\" __global__ void k( {", "broken.cu", &[]) {
        Err(NvrtcError::Compile { status, log }) => {
            assert!(status.contains("COMPILATION"), "{status}");
            assert!(log.contains("broken.cu"), "{log}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn with_a_cuda_12_driver_an_nvrtc_12_is_chosen_over_a_13_found_first() {
    let root = tempfile::tempdir().expect("tmp");
    let venv = root.path().join("venv");
    touch(&venv.join("bin/python3"));
    let cu13 = venv.join("lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13");
    let cu12 = root.path().join("usr/local/cuda-12.8/lib64/libnvrtc.so.12");
    touch(&cu13);
    touch(&cu12);
    let env = env(root.path(), &[("PATH", venv.join("bin").display().to_string())]);
    let searched = search(CudaLibrary::Nvrtc, &env);
    let path = |candidate: Option<&assay_kernels::cuda::libs::Candidate>| candidate.map(|c| c.path.clone());
    assert_eq!(path(searched.found()), Some(cu13.clone()), "the wheel comes first in the search");
    assert_eq!(
        path(searched.choose(Some(12))),
        Some(cu12),
        "PTX from NVRTC 13 would not load on a 12.x driver"
    );
    assert_eq!(path(searched.choose(Some(13))), Some(cu13.clone()));
    assert_eq!(path(searched.choose(None)), Some(cu13.clone()), "without a driver, the search order");
    // Nothing old enough: the first found, and the doctor names the mismatch.
    assert_eq!(path(searched.choose(Some(11))), Some(cu13));
}
