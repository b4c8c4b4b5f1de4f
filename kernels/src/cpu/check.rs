//! Checking an output against the scalar reference.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::spec::{Inputs, KernelSpec};
use crate::digest::digest_f32;
use crate::error::KernelError;

/// The largest absolute difference, in f64. A NaN on one side only, or infinities that
/// differ, count as an infinite error; NaN on both sides as none.
pub fn max_abs_err(output: &[f32], reference: &[f32]) -> Result<f64, KernelError> {
    if output.len() != reference.len() {
        return Err(KernelError::LengthMismatch { output_len: output.len(), reference_len: reference.len() });
    }
    let mut worst = 0.0f64;
    for (&got, &want) in output.iter().zip(reference) {
        let err = match (got.is_nan(), want.is_nan()) {
            (true, true) => 0.0,
            (true, false) | (false, true) => f64::INFINITY,
            (false, false) if got == want => 0.0,
            (false, false) => (f64::from(got) - f64::from(want)).abs(),
        };
        let err = if err.is_nan() { f64::INFINITY } else { err };
        worst = worst.max(err);
    }
    Ok(worst)
}

/// An output judged against the reference: what `kernel.launch.completed` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// blake3 of the inputs ([`Inputs::digest`]).
    pub input_digest: String,
    /// blake3 of the output's little-endian bytes.
    pub output_digest: String,
    /// blake3 of the reference output's little-endian bytes.
    pub reference_digest: String,
    /// Largest absolute error against the reference.
    pub max_abs_err: f64,
    /// The tolerance applied.
    pub tolerance: f64,
    /// `max_abs_err <= tolerance`.
    pub passed: bool,
}

/// Judges `output` (from any backend) against the scalar reference.
pub fn evaluate(
    spec: &KernelSpec,
    inputs: &Inputs,
    output: &[f32],
    tolerance: f64,
) -> Result<Evaluation, KernelError> {
    let reference = spec.reference(inputs)?;
    let max_abs_err = max_abs_err(output, &reference)?;
    Ok(Evaluation {
        input_digest: inputs.digest(),
        output_digest: digest_f32(output),
        reference_digest: digest_f32(&reference),
        max_abs_err,
        tolerance,
        passed: max_abs_err <= tolerance,
    })
}

/// One CPU launch and its evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuLaunch {
    /// The kernel's output.
    pub output: Vec<f32>,
    /// Wall time of the kernel alone, microseconds.
    pub duration_us: u64,
    /// The output judged against the reference.
    pub evaluation: Evaluation,
}

/// Runs the CPU kernel, times it, and evaluates the output.
pub fn run_cpu_checked(spec: &KernelSpec, inputs: &Inputs, tolerance: f64) -> Result<CpuLaunch, KernelError> {
    let started = Instant::now();
    let output = spec.run_cpu(inputs)?;
    let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let evaluation = evaluate(spec, inputs, &output, tolerance)?;
    Ok(CpuLaunch { output, duration_us, evaluation })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_abs_err_handles_specials() {
        assert_eq!(max_abs_err(&[1.0, 2.0], &[1.5, 2.0]), Ok(0.5));
        assert_eq!(max_abs_err(&[f32::NAN], &[f32::NAN]), Ok(0.0));
        assert_eq!(max_abs_err(&[f32::NAN], &[0.0]), Ok(f64::INFINITY));
        assert_eq!(max_abs_err(&[0.0], &[f32::NAN]), Ok(f64::INFINITY));
        assert_eq!(max_abs_err(&[f32::INFINITY], &[f32::INFINITY]), Ok(0.0));
        assert_eq!(max_abs_err(&[f32::INFINITY], &[f32::NEG_INFINITY]), Ok(f64::INFINITY));
        assert!(max_abs_err(&[0.0], &[]).is_err());
    }
}
