//! What the doctor makes of a machine's findings: the machines labs have, laid out as facts
//! (the gathering itself runs in tests/cli/gpu_doctor.rs).

use assay_kernels::cuda::nvrtc::NvrtcError;
use assay_kernels::cuda::{CudaDevice, CudaProbe};
use assay_kernels::doctor::{Doctor, Findings, NvrtcFacts};

const NVRTC_12_8_ARCHS: [i32; 12] = [50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 90, 120];
const NVRTC_13_0_ARCHS: [i32; 8] = [75, 80, 86, 89, 90, 100, 120, 121];

fn machine(driver_version: i32, capability: (i32, i32), nvrtc: (i32, i32), archs: &[i32]) -> Findings {
    Findings {
        searched: Vec::new(),
        driver: CudaProbe::Available {
            driver_version,
            devices: vec![CudaDevice {
                ordinal: 0,
                name: "NVIDIA GB10".into(),
                compute_capability: capability,
                total_mem_bytes: 128 << 30,
            }],
        },
        nvrtc: Ok(NvrtcFacts {
            path: format!("/usr/local/cuda/lib64/libnvrtc.so.{}", nvrtc.0),
            version: nvrtc,
            archs: Ok(archs.to_vec()),
        }),
        nvml: Ok((Some("580.95.05".into()), Some(true))),
        kmsg_readable: true,
    }
}

#[test]
fn a_gb10_with_cuda_13_can_run_kernels_with_nothing_to_fix() {
    let doctor = Doctor::assess(machine(13000, (12, 1), (13, 0), &NVRTC_13_0_ARCHS));
    assert!(doctor.can_run_kernels, "{doctor:#?}");
    assert!(doctor.problems.is_empty(), "{:#?}", doctor.problems);
    assert_eq!(doctor.driver_cuda_version.as_deref(), Some("13.0"));
    assert_eq!(doctor.nvrtc_version.as_deref(), Some("13.0"));
    assert_eq!(doctor.devices[0].compute_capability, "12.1");
    assert_eq!(doctor.devices[0].nvrtc_arch, "--gpu-architecture=compute_121");
    assert_eq!(doctor.devices[0].nvrtc_supports, Some(true));
}

#[test]
fn an_nvrtc_older_than_the_gpu_is_named_with_both_versions() {
    let doctor = Doctor::assess(machine(13000, (12, 1), (12, 8), &NVRTC_12_8_ARCHS));
    assert!(!doctor.can_run_kernels);
    assert_eq!(doctor.devices[0].nvrtc_supports, Some(false));
    let problem = &doctor.problems[0];
    for named in ["NVRTC 12.8", "sm_121", "sm_120"] {
        assert!(problem.problem.contains(named), "{named}: {}", problem.problem);
    }
    assert!(problem.fix.contains("ASSAY_NVRTC"), "{}", problem.fix);
}

#[test]
fn an_nvrtc_newer_than_the_driver_cannot_run_kernels_and_says_which_nvrtc_to_use() {
    let doctor = Doctor::assess(machine(12080, (9, 0), (13, 0), &NVRTC_13_0_ARCHS));
    assert!(!doctor.can_run_kernels, "PTX from NVRTC 13 does not load on a CUDA 12.8 driver");
    assert_eq!(doctor.devices[0].nvrtc_supports, Some(true));
    assert_eq!(doctor.problems.len(), 1, "{:#?}", doctor.problems);
    assert!(doctor.problems[0].problem.contains("CUDA 12.8 driver"), "{:?}", doctor.problems[0]);
    assert!(doctor.problems[0].fix.contains("NVRTC 12.x"), "{:?}", doctor.problems[0]);
}

#[test]
fn what_does_not_stop_kernels_is_still_a_problem_with_its_fix() {
    let mut findings = machine(12080, (9, 0), (12, 8), &NVRTC_12_8_ARCHS);
    findings.kmsg_readable = false;
    findings.nvml = Ok((Some("570.133.20".into()), Some(false)));
    let doctor = Doctor::assess(findings);
    assert!(doctor.can_run_kernels);
    let texts: Vec<&str> = doctor.problems.iter().map(|p| p.problem.as_str()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].contains("other processes' GPU use") && texts[1].contains("/dev/kmsg"), "{texts:?}");
    assert!(doctor.problems.iter().all(|p| !p.fix.is_empty()));
}

#[test]
fn without_a_driver_or_nvrtc_each_missing_piece_has_one_fix() {
    let findings = Findings {
        searched: Vec::new(),
        driver: CudaProbe::Unavailable {
            reason: "the CUDA driver library (libcuda.so.1) was not found".into(),
        },
        nvrtc: Err(NvrtcError::NotLoaded("libnvrtc.so.13: cannot open".into())),
        nvml: Err("libnvidia-ml.so.1: cannot open".into()),
        kmsg_readable: true,
    };
    let doctor = Doctor::assess(findings);
    assert!(!doctor.can_run_kernels);
    assert!(doctor.devices.is_empty() && !doctor.nvml && doctor.nvrtc_path.is_none());
    let fixes: Vec<&str> = doctor.problems.iter().map(|p| p.fix.as_str()).collect();
    assert_eq!(fixes.len(), 3, "{:#?}", doctor.problems);
    assert!(fixes[0].contains("install the NVIDIA driver"), "{}", fixes[0]);
    assert!(fixes[1].contains("pip install nvidia-cuda-nvrtc"), "{}", fixes[1]);
    assert!(fixes[2].contains("NVML"), "{}", fixes[2]);
}
