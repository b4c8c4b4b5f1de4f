//! Running a `[[cuda]]` cell (in the cell child, on a CUDA context) and judging its output
//! against its reference; and what is recorded where CUDA cannot run it.

use super::cell::{CellOutcome, Completed, cuda_fault};
use super::cuda_table::{SourceCell, SourceLaunch, SourceReference};
use crate::backend::Backend;
use crate::cpu::{InputRange, SplitMix64, fill, max_abs_err};
use crate::cuda::{CudaError, CudaRunner};
use crate::digest::{Buffer, digest_buffers, digest_f32};
use crate::error::KernelError;

/// The error name of a `[[cuda]]` cell that could not run here (no CUDA, or `--backend cpu`):
/// recorded as `kernel.launch.faulted`, never as a pass, with the reason in `detail`.
pub const NOT_RUNNABLE: &str = "NOT_RUNNABLE";

/// The fault recorded for a `[[cuda]]` cell that cannot run here, and why.
pub fn not_runnable(reason: &str) -> CellOutcome {
    CellOutcome::fault(
        Backend::Cuda,
        None,
        NOT_RUNNABLE,
        false,
        format!("this [[cuda]] cell needs CUDA, which is not usable here: {reason}"),
    )
}

/// The cell's input buffers: drawn in order from one SplitMix64 stream seeded with `seed`
/// (the built-in kernels draw theirs the same way, so their references see the same values).
pub fn generate_inputs(lens: &[u32], seed: u64, range: InputRange) -> Result<Vec<Vec<f32>>, KernelError> {
    range.validate()?;
    let mut rng = SplitMix64::new(seed);
    Ok(lens.iter().map(|&len| fill(&mut rng, len as usize, range)).collect())
}

/// blake3 of the input buffers, length-prefixed (as the built-in kernels' `input_digest`).
pub fn inputs_digest(inputs: &[Vec<f32>]) -> String {
    let buffers: Vec<Buffer<'_>> = inputs.iter().map(|b| Buffer::F32(b)).collect();
    digest_buffers(&buffers)
}

/// An output judged against its reference output.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// blake3 of the output.
    pub output_digest: String,
    /// blake3 of the reference output.
    pub reference_digest: String,
    /// Largest absolute difference; `None` when not finite (a NaN or infinity on one side).
    pub max_abs_err: Option<f64>,
    /// Equal digests, or a finite `max_abs_err <= tolerance`.
    pub passed: bool,
}

/// Judges `output` against `reference`. Equal digests pass whatever the tolerance (the same
/// bits, NaNs included); otherwise the largest absolute difference must be finite and within
/// `tolerance`.
pub fn judge_output(output: &[f32], reference: &[f32], tolerance: f64) -> Result<Judgement, KernelError> {
    let output_digest = digest_f32(output);
    let reference_digest = digest_f32(reference);
    let worst = max_abs_err(output, reference)?;
    let max_abs_err = worst.is_finite().then_some(worst);
    let passed = output_digest == reference_digest || max_abs_err.is_some_and(|e| e <= tolerance);
    Ok(Judgement { output_digest, reference_digest, max_abs_err, passed })
}

fn launch_on(
    runner: &mut CudaRunner,
    launch: &SourceLaunch,
    inputs: &[Vec<f32>],
) -> Result<crate::cuda::CudaLaunch, CudaError> {
    runner.run_program(&launch.program, launch.dims, inputs, launch.output_len)
}

/// Runs `cell` on `runner`: its reference (another route on the GPU, or a built-in on the
/// CPU), then the cell itself, on the same inputs; judges the output.
pub fn run_source_cell(cell: &SourceCell, runner: &mut CudaRunner) -> CellOutcome {
    let device = Some(runner.uuid().to_owned());
    let invalid = |e: &dyn std::fmt::Display| {
        CellOutcome::fault(Backend::Cuda, device.clone(), "INVALID_VARIANT", false, e.to_string())
    };
    let inputs = match generate_inputs(&cell.launch.inputs, cell.seed, cell.range) {
        Ok(inputs) => inputs,
        Err(e) => return invalid(&e),
    };
    let reference = match &cell.reference {
        SourceReference::Builtin(spec) => {
            let builtin = match spec.generate(cell.seed, cell.range) {
                Ok(builtin) => builtin,
                Err(e) => return invalid(&e),
            };
            if builtin.digest() != inputs_digest(&inputs) {
                return CellOutcome::fault(
                    Backend::Cuda,
                    device,
                    "KERNEL_ERROR",
                    false,
                    format!("the built-in {} reference drew other inputs than this cell", spec.name()),
                );
            }
            match spec.reference(&builtin) {
                Ok(output) => output,
                Err(e) => return invalid(&e),
            }
        }
        SourceReference::Route { overrides, launch } => match launch_on(runner, launch, &inputs) {
            Ok(done) => done.output,
            Err(error) => {
                let shown: Vec<String> = overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
                return match cuda_fault(device, &error) {
                    CellOutcome::Faulted(mut fault) => {
                        fault.detail = Some(super::cell::clip(&format!(
                            "the reference ({}) faulted: {error}",
                            shown.join(" ")
                        )));
                        CellOutcome::Faulted(fault)
                    }
                    other => other,
                };
            }
        },
    };
    let launch = match launch_on(runner, &cell.launch, &inputs) {
        Ok(launch) => launch,
        Err(error) => return cuda_fault(device, &error),
    };
    match judge_output(&launch.output, &reference, cell.tolerance) {
        Ok(j) => CellOutcome::Completed(Completed {
            backend: Backend::Cuda,
            device: runner.uuid().to_owned(),
            grid: launch.dims.grid,
            block: launch.dims.block,
            duration_us: launch.duration_us,
            input_digest: inputs_digest(&inputs),
            output_digest: j.output_digest,
            reference_digest: j.reference_digest,
            max_abs_err: j.max_abs_err,
            tolerance: cell.tolerance,
            passed: j.passed,
        }),
        Err(e) => CellOutcome::fault(Backend::Cuda, device, "KERNEL_ERROR", false, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::KernelSpec;

    #[test]
    fn judging_passes_equal_digests_and_errors_within_tolerance() {
        let reference = [1.0f32, 2.0, f32::NAN];
        let same = judge_output(&reference, &reference, 0.0).expect("judged");
        assert!(same.passed && same.output_digest == same.reference_digest);
        assert_eq!(same.max_abs_err, Some(0.0));

        let close = judge_output(&[1.0, 2.0 + 1e-6, f32::NAN], &reference, 1e-5).expect("judged");
        assert!(close.passed, "{close:?}");
        assert_ne!(close.output_digest, close.reference_digest);
        let exact = judge_output(&[1.0, 2.0 + 1e-6, f32::NAN], &reference, 0.0).expect("judged");
        assert!(!exact.passed, "tolerance 0 asks for the same digest");

        let off = judge_output(&[1.0, 3.0, f32::NAN], &reference, 0.5).expect("judged");
        assert!(!off.passed);
        assert_eq!(off.max_abs_err, Some(1.0));
        let nan = judge_output(&[1.0, f32::NAN, f32::NAN], &reference, 1e30).expect("judged");
        assert!(!nan.passed && nan.max_abs_err.is_none(), "a NaN where the reference has none fails");
        assert!(judge_output(&[1.0], &reference, 1.0).is_err(), "lengths must agree");
    }

    #[test]
    fn inputs_are_the_built_in_kernels_inputs() {
        let range = InputRange::default();
        let spec = KernelSpec::Saxpy { n: 100, alpha: 2.0 };
        let builtin = spec.generate(7, range).expect("inputs");
        let ours = generate_inputs(&[100, 100], 7, range).expect("inputs");
        assert_eq!(builtin.digest(), inputs_digest(&ours));
        let matmul = KernelSpec::MatmulTiled { m: 3, n: 5, k: 4, tile: 2 };
        let builtin = matmul.generate(9, range).expect("inputs");
        assert_eq!(builtin.digest(), inputs_digest(&generate_inputs(&[12, 20], 9, range).expect("inputs")));
        assert_ne!(inputs_digest(&generate_inputs(&[12, 20], 10, range).expect("inputs")), builtin.digest());
        assert!(generate_inputs(&[1], 0, InputRange { lo: 1.0, hi: 0.0 }).is_err());
    }

    #[test]
    fn not_runnable_is_a_fault_with_the_reason() {
        let outcome = not_runnable("the CUDA driver library (libcuda.so) was not found");
        assert!(!outcome.passed() && !outcome.is_sticky());
        let CellOutcome::Faulted(fault) = outcome else { panic!("a fault") };
        assert_eq!(fault.error, NOT_RUNNABLE);
        assert_eq!(fault.backend, Backend::Cuda);
        assert!(fault.device.is_none());
        assert!(fault.detail.is_some_and(|d| d.contains("libcuda.so")));
    }
}
