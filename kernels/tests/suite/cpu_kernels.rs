//! CPU kernels against their plain scalar references, on every variant shape.

use assay_kernels::cpu::formats::{Fp4Format, QuantizedMatrix, e2m1_decode};
use assay_kernels::cpu::{
    InputRange, Inputs, KernelSpec, evaluate, fp4_dequant_matmul, fp4_dequant_matmul_reference,
    run_cpu_checked,
};

const TOLERANCE: f64 = 1e-3;

fn check_passes(spec: KernelSpec, seed: u64, range: InputRange) -> f64 {
    let inputs = spec.generate(seed, range).expect("inputs");
    let launch = run_cpu_checked(&spec, &inputs, TOLERANCE).expect("run");
    assert_eq!(launch.output.len(), spec.output_len(), "{spec:?}");
    assert!(launch.evaluation.passed, "{spec:?} seed {seed}: max_abs_err {}", launch.evaluation.max_abs_err);
    launch.evaluation.max_abs_err
}

#[test]
fn saxpy_matches_reference() {
    for n in [1, 7, 1000, 4097] {
        for alpha in [0.0, -1.5, 3.25] {
            check_passes(KernelSpec::Saxpy { n, alpha }, n.into(), InputRange::default());
        }
    }
}

#[test]
fn reduce_sum_matches_reference() {
    for n in [1, 255, 1000, 65_537] {
        for block in [1, 32, 256, 1024] {
            let err = check_passes(KernelSpec::ReduceSum { n, block }, 3, InputRange::default());
            assert!(err < 1e-4, "n {n} block {block}: {err}");
        }
    }
}

#[test]
fn matmul_tiled_matches_reference_including_ragged_tiles() {
    let shapes =
        [(1, 1, 1, 1), (5, 7, 3, 4), (17, 13, 29, 8), (33, 65, 31, 32), (64, 64, 64, 16), (10, 3, 100, 7)];
    for (m, n, k, tile) in shapes {
        for seed in [1, 2] {
            check_passes(KernelSpec::MatmulTiled { m, n, k, tile }, seed, InputRange::default());
        }
    }
}

#[test]
fn broken_matmul_fails_where_the_correct_one_passes() {
    let shapes = [(1, 1, 1, 1), (5, 7, 3, 4), (17, 13, 29, 8), (64, 64, 64, 16), (8, 8, 40, 32)];
    for (m, n, k, tile) in shapes {
        for seed in [1, 2, 3] {
            let range = InputRange::default();
            let good = KernelSpec::MatmulTiled { m, n, k, tile };
            let broken = KernelSpec::MatmulTiledBroken { m, n, k, tile };
            let inputs = good.generate(seed, range).expect("inputs");
            assert_eq!(broken.generate(seed, range).expect("inputs"), inputs);
            let good_run = run_cpu_checked(&good, &inputs, TOLERANCE).expect("run");
            let broken_run = run_cpu_checked(&broken, &inputs, TOLERANCE).expect("run");
            assert!(good_run.evaluation.passed);
            assert!(
                broken_run.evaluation.max_abs_err > TOLERANCE && !broken_run.evaluation.passed,
                "{broken:?} seed {seed}: {}",
                broken_run.evaluation.max_abs_err
            );
            // Same inputs and reference, different output.
            assert_eq!(good_run.evaluation.input_digest, broken_run.evaluation.input_digest);
            assert_eq!(good_run.evaluation.reference_digest, broken_run.evaluation.reference_digest);
            assert_ne!(good_run.evaluation.output_digest, broken_run.evaluation.output_digest);
        }
    }
}

#[test]
fn softmax_matches_reference_and_sums_to_one() {
    let range = InputRange { lo: -30.0, hi: 30.0 };
    for (rows, cols) in [(1, 1), (3, 17), (64, 1000), (2, 4096)] {
        check_passes(KernelSpec::SoftmaxRows { rows, cols }, 9, range);
        let spec = KernelSpec::SoftmaxRows { rows, cols };
        let inputs = spec.generate(9, range).expect("inputs");
        let out = spec.run_cpu(&inputs).expect("run");
        for row in out.chunks(cols as usize) {
            let sum: f64 = row.iter().map(|&v| f64::from(v)).sum();
            assert!((sum - 1.0).abs() < 1e-4, "{sum}");
        }
    }
    // Large inputs do not overflow: the row maximum is subtracted first.
    let spec = KernelSpec::SoftmaxRows { rows: 1, cols: 3 };
    let inputs = Inputs::SoftmaxRows { x: vec![1000.0, 1000.0, -1000.0] };
    let out = spec.run_cpu(&inputs).expect("run");
    assert_eq!(out, vec![0.5, 0.5, 0.0]);
}

#[test]
fn fp4_dequant_matmul_matches_reference() {
    let shapes = [(1, 1, 1), (3, 5, 33), (16, 24, 100), (8, 8, 64), (2, 3, 15)];
    for format in [Fp4Format::Mxfp4, Fp4Format::Nvfp4] {
        for (m, n, k) in shapes {
            for range in [InputRange::default(), InputRange { lo: -100.0, hi: 50.0 }] {
                let spec = KernelSpec::Fp4DequantMatmul { m, n, k, format };
                let inputs = spec.generate(11, range).expect("inputs");
                let out = spec.run_cpu(&inputs).expect("run");
                let reference = spec.reference(&inputs).expect("reference");
                // Scale the tolerance with the magnitude of the products.
                let scale = f64::from(range.hi.abs().max(range.lo.abs())).powi(2) * f64::from(k);
                let eval = evaluate(&spec, &inputs, &out, 1e-5 * scale).expect("evaluate");
                assert!(eval.passed, "{spec:?}: {} (reference {})", eval.max_abs_err, reference.len());
            }
        }
    }
}

#[test]
fn fp4_dequant_matmul_hand_computed() {
    // W (2×32, MXFP4): row 0 is the E2M1 grid ×4 (amax 24 → scale 2^2), row 1 all -0.5
    // (amax 0.5 → scale 2^-3, element -4).
    let grid = [0.0f32, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];
    let row0: Vec<f32> = (0..32).map(|i| grid[i % 8] * 4.0).collect();
    let row1 = vec![-0.5f32; 32];
    let dense: Vec<f32> = row0.iter().chain(&row1).copied().collect();
    let w = QuantizedMatrix::quantize(Fp4Format::Mxfp4, 2, 32, &dense).expect("quantize");
    assert_eq!(w.scales, vec![129, 124]);
    assert_eq!(w.dequantize(), dense);
    // A (1×32): all ones → C = [4 · 4 · (0+0.5+1+1.5+2+3+4+6), 32 · -0.5].
    let a = vec![1.0f32; 32];
    let want = vec![4.0 * 4.0 * 18.0, -16.0];
    assert_eq!(fp4_dequant_matmul(&a, &w, 1), want);
    assert_eq!(fp4_dequant_matmul_reference(&a, &w, 1), want);
    // The decoded codes of row 0 cycle through 0..8.
    for col in 0..32 {
        assert_eq!(e2m1_decode(w.code(0, col)), grid[col % 8]);
    }
}

#[test]
fn inputs_are_deterministic_and_pinned() {
    let spec = KernelSpec::Saxpy { n: 4, alpha: 2.0 };
    let a = spec.generate(42, InputRange::default()).expect("inputs");
    let b = spec.generate(42, InputRange::default()).expect("inputs");
    assert_eq!(a, b);
    assert_eq!(a.digest(), b.digest());
    assert_ne!(a.digest(), spec.generate(43, InputRange::default()).expect("inputs").digest());
    let Inputs::Saxpy { x, .. } = &a else {
        panic!("saxpy inputs expected");
    };
    // SplitMix64(42): first output 0xbdd732262feb6e95 → top 24 bits 0xbdd732.
    let first = -1.0 + (0xbdd732 as f32 / (1u32 << 24) as f32) * 2.0;
    assert_eq!(x[0], first);
}

#[test]
fn specs_serialise_with_kernel_tag_and_variant() {
    let spec = KernelSpec::Fp4DequantMatmul { m: 2, n: 3, k: 64, format: Fp4Format::Nvfp4 };
    let json = serde_json::to_value(spec).expect("json");
    assert_eq!(json["kernel"], "fp4_dequant_matmul");
    assert_eq!(json["format"], "nvfp4");
    let variant = spec.variant();
    assert!(variant.get("kernel").is_none());
    assert_eq!(variant["k"], 64);
    let back: KernelSpec = serde_json::from_value(json).expect("parse");
    assert_eq!(back, spec);
    assert!(serde_json::from_str::<KernelSpec>(r#"{"kernel":"saxpy","n":1}"#).is_err());
    assert_eq!(KernelSpec::MatmulTiledBroken { m: 1, n: 1, k: 1, tile: 1 }.name(), "matmul_tiled_broken");
}

#[test]
fn invalid_variants_and_inputs_are_errors() {
    let range = InputRange::default();
    let bad = [
        KernelSpec::Saxpy { n: 0, alpha: 1.0 },
        KernelSpec::Saxpy { n: 1, alpha: f32::NAN },
        KernelSpec::ReduceSum { n: 10, block: 3 },
        KernelSpec::ReduceSum { n: 10, block: 2048 },
        KernelSpec::MatmulTiled { m: 1, n: 1, k: 1, tile: 0 },
        KernelSpec::MatmulTiled { m: 1, n: 1, k: 1, tile: 33 },
        KernelSpec::MatmulTiled { m: 1 << 13, n: 1 << 13, k: 1 << 13, tile: 16 },
        KernelSpec::SoftmaxRows { rows: u32::MAX, cols: u32::MAX },
    ];
    for spec in bad {
        assert!(spec.generate(1, range).is_err(), "{spec:?}");
    }
    let spec = KernelSpec::Saxpy { n: 3, alpha: 1.0 };
    assert!(spec.run_cpu(&Inputs::Saxpy { x: vec![1.0; 3], y: vec![1.0; 2] }).is_err());
    assert!(spec.run_cpu(&Inputs::ReduceSum { x: vec![1.0; 3] }).is_err());
    assert!(spec.generate(1, InputRange { lo: 2.0, hi: 1.0 }).is_err());
}

#[test]
fn specs_flatten_into_campaign_cells() {
    #[derive(serde::Deserialize)]
    struct Cell {
        #[serde(flatten)]
        spec: KernelSpec,
        seed: u64,
        tolerance: f64,
    }
    let cell: Cell = serde_json::from_str(
        r#"{"kernel":"matmul_tiled","m":4,"n":5,"k":6,"tile":2,"seed":9,"tolerance":0.001}"#,
    )
    .expect("cell");
    assert_eq!(cell.spec, KernelSpec::MatmulTiled { m: 4, n: 5, k: 6, tile: 2 });
    assert_eq!((cell.seed, cell.tolerance), (9, 0.001));
}
