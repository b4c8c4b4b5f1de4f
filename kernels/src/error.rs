//! Errors of the CPU kernels and their inputs.

/// Why a kernel, its variant or its inputs were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// A variant parameter is out of range.
    #[error("invalid variant for {kernel}: {reason}")]
    InvalidVariant {
        /// The kernel's name.
        kernel: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The inputs do not fit the kernel or its shape.
    #[error("inputs do not match {kernel}: {reason}")]
    InputMismatch {
        /// The kernel's name.
        kernel: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The input range is empty or not finite.
    #[error("invalid input range [{lo}, {hi})")]
    InvalidRange {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
    /// An output and its reference have different lengths.
    #[error("output has {output_len} values, reference has {reference_len}")]
    LengthMismatch {
        /// Values in the output.
        output_len: usize,
        /// Values in the reference.
        reference_len: usize,
    },
}
