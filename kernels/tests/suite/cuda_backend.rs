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
