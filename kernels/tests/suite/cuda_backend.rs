//! The CUDA backend without a GPU (this machine) and, where one is present, against the CPU.

use assay_kernels::cpu::{Fp4Format, InputRange, KernelSpec, evaluate};
use assay_kernels::cuda::{CudaError, CudaProbe, CudaRunner, driver_library_present, probe_cuda};
use assay_kernels::{Backend, BackendRequest};

#[test]
fn probe_reports_unavailable_cleanly_without_a_driver() {
    let probe = probe_cuda();
    if !driver_library_present() {
        let reason = probe.unavailable_reason().expect("unavailable without libcuda");
        assert!(reason.contains("libcuda"), "{reason}");
        assert_eq!(BackendRequest::Auto.resolve(&probe), Ok(Backend::Cpu));
        assert!(BackendRequest::Cuda.resolve(&probe).is_err());
        match CudaRunner::new(0) {
            Err(CudaError::Unavailable { reason }) => assert!(!reason.is_empty()),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    // Either way the probe serialises for gpu.preflight.
    let json = serde_json::to_value(&probe).expect("json");
    assert!(json["status"] == "available" || json["status"] == "unavailable");
}

#[test]
fn cuda_kernels_match_the_reference_when_a_gpu_is_present() {
    let CudaProbe::Available { devices, .. } = probe_cuda() else {
        eprintln!("CUDA unavailable here; skipping the GPU comparison");
        return;
    };
    assert!(!devices.is_empty());
    let mut runner = CudaRunner::new(0).expect("context");
    let specs = [
        KernelSpec::Saxpy { n: 4097, alpha: 1.5 },
        KernelSpec::ReduceSum { n: 65_537, block: 256 },
        KernelSpec::MatmulTiled { m: 33, n: 65, k: 31, tile: 16 },
        KernelSpec::MatmulTiled { m: 17, n: 13, k: 29, tile: 8 },
        KernelSpec::SoftmaxRows { rows: 64, cols: 1000 },
        KernelSpec::Fp4DequantMatmul { m: 16, n: 24, k: 100, format: Fp4Format::Mxfp4 },
        KernelSpec::Fp4DequantMatmul { m: 16, n: 24, k: 100, format: Fp4Format::Nvfp4 },
    ];
    for spec in specs {
        let inputs = spec.generate(5, InputRange::default()).expect("inputs");
        let launch = runner.run(&spec, &inputs).expect("launch");
        let eval = evaluate(&spec, &inputs, &launch.output, 1e-3).expect("evaluate");
        assert!(eval.passed, "{spec:?}: {}", eval.max_abs_err);
    }
    let broken = KernelSpec::MatmulTiledBroken { m: 1, n: 1, k: 1, tile: 1 };
    let inputs = broken.generate(1, InputRange::default()).expect("inputs");
    assert!(matches!(runner.run(&broken, &inputs), Err(CudaError::Unsupported { .. })));
}

#[test]
fn own_cuda_sources_are_judged_against_their_references_when_a_gpu_is_present() {
    use assay_kernels::campaign::{Campaign, CellOutcome, run_source_cell};
    let CudaProbe::Available { .. } = probe_cuda() else {
        eprintln!("CUDA unavailable here; skipping the [[cuda]] cells on a GPU");
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/examples");
    let campaign = Campaign::load(&dir.join("own-saxpy.toml")).unwrap_or_else(|e| panic!("{e}"));
    let mut runner = CudaRunner::new(0).expect("context");
    for cell in &campaign.cuda {
        let outcome = run_source_cell(cell, &mut runner);
        let CellOutcome::Completed(done) = &outcome else { panic!("{}: {outcome:?}", cell.label()) };
        let off = cell.axes["route"] == "off_by_one";
        assert_eq!(done.passed, !off, "{} {}: {done:?}", cell.name, cell.label());
        assert_eq!(done.grid[0], (cell.axes["n"].as_u64().expect("n") as u32).div_ceil(256));
    }
    // A source NVRTC refuses is a fault of the cell, named, not a panic.
    let mut broken = campaign.cuda[0].clone();
    broken.launch.program.source = std::sync::Arc::from("extern \"C\" __global__ void saxpy_naive( {");
    let outcome = run_source_cell(&broken, &mut runner);
    let CellOutcome::Faulted(fault) = outcome else { panic!("{outcome:?}") };
    assert_eq!(fault.error, "NVRTC_COMPILE_FAILED", "{fault:?}");
}
