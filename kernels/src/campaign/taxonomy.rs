//! What went wrong in a command cell: the child's output lines and how it ended, classified
//! into one upper-snake `error` name (pattern `^[A-Z][A-Z0-9_]{0,127}$`) and whether the CUDA
//! context is lost (`sticky`).
//!
//! Names: a fault the driver has a `CUresult` for is named by that `CUresult`
//! (`CUDA_ERROR_ILLEGAL_ADDRESS`), whichever way it was printed: the name itself, the runtime
//! API's name (`cudaErrorIllegalAddress`), the error string (`an illegal memory access was
//! encountered`), or cuda-gdb's exception name (`Warp Illegal Address`), so one fault has one
//! name across PyTorch, JAX, Triton, CuPy and plain CUDA programs. A runtime name with no
//! driver counterpart keeps its own name in the same shape (`cudaErrorInvalidConfiguration` →
//! `CUDA_ERROR_INVALID_CONFIGURATION`). Stickiness comes only from the driver's table
//! ([`crate::cuda::is_sticky`]); a name that is not a `CUresult` is not sticky.
//!
//! Two decisions worth knowing:
//! - Triton's `OutOfResources: out of resource: shared memory, Required: …, Hardware limit: …`
//!   is `CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES`: Triton raises it before launching, for the same
//!   reason the driver returns 701 ("too many resources requested for launch"): the variant's
//!   tile/stage choice asks more of an SM than it has. It is not device-memory exhaustion
//!   (`CUDA_ERROR_OUT_OF_MEMORY`), the context survives, and the fix is the same as for 701:
//!   a smaller block or fewer stages.
//! - Statuses of libraries above CUDA (CUTLASS's `Got cutlass error: Error Internal`, cuBLAS
//!   statuses) are not CUDA faults: the library refused the problem and the exit status says
//!   so (`failed`). The same holds for compute-sanitizer's per-access reports; its
//!   `Program hit cudaError… (error N)` lines name the CUDA error and are classified.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::cuda::is_sticky_name;

/// The error name of a cell the runner stopped at its wall-clock limit.
pub const TIMEOUT: &str = "TIMEOUT";

/// The error name of a cell whose result holds NaN or ±Inf (the runner finds these in the
/// result JSON, not in the output, but records them under this one name).
pub const NAN_IN_OUTPUT: &str = "NAN_IN_OUTPUT";

/// Most bytes of one output line that are looked at; the rest of a longer line is ignored.
pub const LINE_BYTES_MAX: usize = 4096;

/// Most characters of `evidence`.
pub const EVIDENCE_CHARS_MAX: usize = 512;

/// Most characters of an error name.
const NAME_CHARS_MAX: usize = 128;

/// Characters kept before the match when a long line is clipped around it.
const EVIDENCE_LEAD_CHARS: usize = 64;

/// A classified fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultClass {
    /// The upper-snake error name, e.g. `CUDA_ERROR_ILLEGAL_ADDRESS`, `SIGNAL_SIGSEGV`.
    pub error: String,
    /// Whether the CUDA context is lost.
    pub sticky: bool,
    /// The matched text (one line, clipped to [`EVIDENCE_CHARS_MAX`] characters around the
    /// match).
    pub evidence: String,
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
    /// The runner killed it at the cell's timeout.
    TimedOut,
}

/// Whether `name` is a well-formed error name: `^[A-Z][A-Z0-9_]{0,127}$`.
pub fn is_error_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_uppercase)
        && bytes.len() <= NAME_CHARS_MAX
        && bytes.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
}

/// Classifies one line of a child's output (stdout or stderr). `None` when it names no fault.
/// Only the first [`LINE_BYTES_MAX`] bytes are looked at.
pub fn classify_line(line: &str) -> Option<FaultClass> {
    let line = clip_bytes(line, LINE_BYTES_MAX);
    // Control characters (a progress bar's \r, tabs) become spaces: evidence is one line.
    let text: String = line.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    // ASCII lower-casing keeps byte offsets, so a match in `lower` is a match in `text`.
    let lower = text.to_ascii_lowercase();
    let (error, at) = driver_name(&text).or_else(|| runtime_name(&text)).or_else(|| phrase(&lower))?;
    Some(FaultClass { sticky: is_sticky_name(&error), evidence: evidence(&text, at), error })
}

/// Classifies a child's output line by line, keeping O(1) state: the first sticky class, else
/// the first class. A sticky fault is the root cause the others follow from (after an illegal
/// address every later CUDA call fails), so it wins even when a non-sticky line came first.
#[derive(Debug, Default)]
pub struct OutputClassifier {
    first: Option<FaultClass>,
    sticky: Option<FaultClass>,
}

impl OutputClassifier {
    /// An empty classifier.
    pub fn new() -> Self {
        OutputClassifier::default()
    }

    /// Looks at one line (at most its first [`LINE_BYTES_MAX`] bytes).
    pub fn line(&mut self, line: &str) {
        if self.sticky.is_some() {
            return;
        }
        match classify_line(line) {
            Some(class) if class.sticky => self.sticky = Some(class),
            Some(class) if self.first.is_none() => self.first = Some(class),
            _ => {}
        }
    }

    /// The chosen class: the first sticky one, else the first one.
    pub fn finish(self) -> Option<FaultClass> {
        self.sticky.or(self.first)
    }
}

/// The whole verdict on a command cell, from how it ended and what [`OutputClassifier`] found.
///
/// A CUDA error found in the output wins, whatever the ending: a Python traceback with a CUDA
/// error exits 1 (and a script that catches and prints it may exit 0), an illegal address is often followed by SIGSEGV or SIGABRT (PyTorch's
/// `terminate called after throwing an instance of 'c10::Error'`), and a process left spinning
/// after a sticky error ends at the timeout; the CUDA error is the cause in each case. The
/// signal or timeout stays in `evidence` (`… (then killed by signal 11 (SIGSEGV))`).
/// Otherwise a timeout is [`TIMEOUT`] and a signal `SIGNAL_<NAME>` (`SIGNAL_SIGKILL`), neither
/// sticky: the process is gone, which says nothing about the kernel. Otherwise `None`: the
/// runner records exit 0 as completed and any other status as failed.
pub fn classify(ending: Ending, output: Option<FaultClass>) -> Option<FaultClass> {
    let ended = match ending {
        Ending::Exited(_) => return output,
        Ending::Signaled(signal) => FaultClass {
            error: signal_error(signal),
            sticky: false,
            evidence: format!("killed by signal {signal} ({})", signal_name(signal)),
        },
        Ending::TimedOut => FaultClass { error: TIMEOUT.into(), sticky: false, evidence: "timed out".into() },
    };
    Some(match output {
        None => ended,
        Some(cuda) => {
            let suffix = format!(" (then {})", ended.evidence);
            let keep = EVIDENCE_CHARS_MAX.saturating_sub(suffix.chars().count());
            let evidence = format!("{}{suffix}", cuda.evidence.chars().take(keep).collect::<String>());
            FaultClass { evidence, ..cuda }
        }
    })
}

/// `SIGNAL_<NAME>` for a signal number; `SIGNAL_UNKNOWN` for a number no signal has.
fn signal_error(signal: i32) -> String {
    if signal > 0 { format!("SIGNAL_{}", signal_name(signal)) } else { "SIGNAL_UNKNOWN".into() }
}

/// The conventional name of a signal (`SIGABRT`), or its number for the rest.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        16 => "SIGSTKFLT",
        17 => "SIGCHLD",
        18 => "SIGCONT",
        19 => "SIGSTOP",
        20 => "SIGTSTP",
        21 => "SIGTTIN",
        22 => "SIGTTOU",
        23 => "SIGURG",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        26 => "SIGVTALRM",
        27 => "SIGPROF",
        28 => "SIGWINCH",
        29 => "SIGIO",
        30 => "SIGPWR",
        31 => "SIGSYS",
        other => return format!("SIG{other}"),
    };
    name.to_owned()
}

/// A `CUDA_ERROR_…` name printed as is (cudarc, JAX/XLA, compute-sanitizer, CUDA.jl).
fn driver_name(text: &str) -> Option<(String, Range<usize>)> {
    const PREFIX: &str = "CUDA_ERROR_";
    let mut from = 0;
    while let Some(found) = text[from..].find(PREFIX) {
        let start = from + found;
        let rest = &text.as_bytes()[start + PREFIX.len()..];
        let len =
            rest.iter().take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_').count();
        let name = text[start..start + PREFIX.len() + len].trim_end_matches('_');
        if rest.first().is_some_and(u8::is_ascii_uppercase) && is_error_name(name) {
            return Some((name.to_owned(), start..start + name.len()));
        }
        from = start + PREFIX.len();
    }
    None
}

/// Runtime API names whose driver counterpart is spelled differently; the rest map by
/// spelling (`cudaErrorIllegalAddress` → `CUDA_ERROR_ILLEGAL_ADDRESS`).
const RUNTIME_RENAMES: &[(&str, &str)] = &[
    ("MemoryAllocation", "CUDA_ERROR_OUT_OF_MEMORY"),
    ("InitializationError", "CUDA_ERROR_NOT_INITIALIZED"),
    ("CudartUnloading", "CUDA_ERROR_DEINITIALIZED"),
    ("LaunchFailure", "CUDA_ERROR_LAUNCH_FAILED"),
    ("NoKernelImageForDevice", "CUDA_ERROR_NO_BINARY_FOR_GPU"),
    ("InvalidKernelImage", "CUDA_ERROR_INVALID_IMAGE"),
    ("InvalidResourceHandle", "CUDA_ERROR_INVALID_HANDLE"),
    ("DevicesUnavailable", "CUDA_ERROR_DEVICE_UNAVAILABLE"),
    ("DeviceUninitialized", "CUDA_ERROR_INVALID_CONTEXT"),
    ("SymbolNotFound", "CUDA_ERROR_NOT_FOUND"),
];

/// A runtime API name (`cudaErrorIllegalAddress`), as PyTorch's "Search for
/// `cudaErrorIllegalAddress'" line, CuPy and compute-sanitizer print it.
fn runtime_name(text: &str) -> Option<(String, Range<usize>)> {
    const PREFIX: &str = "cudaError";
    let mut from = 0;
    while let Some(found) = text[from..].find(PREFIX) {
        let start = from + found;
        let rest = &text[start + PREFIX.len()..];
        let len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        let camel = &rest[..len];
        if camel.starts_with(|c: char| c.is_ascii_uppercase()) {
            let name = RUNTIME_RENAMES
                .iter()
                .find(|(runtime, _)| *runtime == camel)
                .map(|(_, driver)| (*driver).to_owned())
                .unwrap_or_else(|| format!("CUDA_ERROR_{}", upper_snake(camel)));
            if is_error_name(&name) {
                return Some((name, start..start + PREFIX.len() + len));
            }
        }
        from = start + PREFIX.len();
    }
    None
}

/// `IllegalAddress` → `ILLEGAL_ADDRESS`; a run of capitals is one word (`ECCUncorrectable` →
/// `ECC_UNCORRECTABLE`).
fn upper_snake(camel: &str) -> String {
    let chars: Vec<char> = camel.chars().collect();
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            let previous = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if !previous.is_ascii_uppercase() || next_is_lower {
                out.push('_');
            }
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Lower-case texts that name a fault, and its `CUresult` name; the first that occurs wins.
/// Error strings are `cudaGetErrorString`'s (driver and runtime print the same ones); the
/// exception names are cuda-gdb's ("CUDA Exception Codes" in its manual).
const PHRASES: &[(&str, &str)] = &[
    // cudaGetErrorString texts.
    ("illegal memory access", "CUDA_ERROR_ILLEGAL_ADDRESS"),
    ("misaligned address", "CUDA_ERROR_MISALIGNED_ADDRESS"),
    // Not "illegal instruction" alone: that is also the shell's report of a CPU SIGILL.
    ("illegal instruction was encountered", "CUDA_ERROR_ILLEGAL_INSTRUCTION"),
    ("unspecified launch failure", "CUDA_ERROR_LAUNCH_FAILED"),
    ("the launch timed out and was terminated", "CUDA_ERROR_LAUNCH_TIMEOUT"),
    ("too many resources requested for launch", "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"),
    ("device-side assert triggered", "CUDA_ERROR_ASSERT"),
    ("hardware stack error", "CUDA_ERROR_HARDWARE_STACK_ERROR"),
    ("invalid program counter", "CUDA_ERROR_INVALID_PC"),
    ("operation not supported on global/shared address space", "CUDA_ERROR_INVALID_ADDRESS_SPACE"),
    ("no kernel image is available for execution on the device", "CUDA_ERROR_NO_BINARY_FOR_GPU"),
    // cuda-gdb exceptions: Lane/Warp/Device Illegal Address, Warp Out-of-range Address, ….
    ("illegal address", "CUDA_ERROR_ILLEGAL_ADDRESS"),
    ("out-of-range address", "CUDA_ERROR_ILLEGAL_ADDRESS"),
    ("warp illegal instruction", "CUDA_ERROR_ILLEGAL_INSTRUCTION"),
    ("invalid address space", "CUDA_ERROR_INVALID_ADDRESS_SPACE"),
    ("warp invalid pc", "CUDA_ERROR_INVALID_PC"),
    ("hardware stack overflow", "CUDA_ERROR_HARDWARE_STACK_ERROR"),
    ("lane user stack overflow", "CUDA_ERROR_HARDWARE_STACK_ERROR"),
    ("warp assert", "CUDA_ERROR_ASSERT"),
    // Triton's OutOfResources (see the module documentation).
    ("out of resource: ", "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"),
];

/// A fault named in words, in the lower-cased line.
fn phrase(lower: &str) -> Option<(String, Range<usize>)> {
    for (needle, error) in PHRASES {
        if let Some(at) = lower.find(needle) {
            return Some(((*error).to_owned(), at..at + needle.len()));
        }
    }
    // "out of memory" alone is also the host's (the kernel's OOM killer, numpy); it is CUDA's
    // when the line says CUDA: PyTorch's "CUDA out of memory", "CUDA error: out of memory".
    if let (Some(at), true) = (lower.find("out of memory"), lower.contains("cuda")) {
        return Some(("CUDA_ERROR_OUT_OF_MEMORY".into(), at..at + "out of memory".len()));
    }
    // A device-side assert() prints `file:line: func: block: [x,y,z], thread: [x,y,z]
    // Assertion `cond` failed.` before the host sees CUDA_ERROR_ASSERT; a CPU assert has no
    // block and thread.
    if let (Some(at), true, true) =
        (lower.find("assertion `"), lower.contains("block: ["), lower.contains("thread: ["))
    {
        return Some(("CUDA_ERROR_ASSERT".into(), at..at + "assertion".len()));
    }
    None
}

/// The line, trimmed, clipped to [`EVIDENCE_CHARS_MAX`] characters so that it shows `at`.
fn evidence(text: &str, at: Range<usize>) -> String {
    let total = text.chars().count();
    if total <= EVIDENCE_CHARS_MAX {
        return text.trim().to_owned();
    }
    let before = text[..at.start].chars().count();
    let through = before + text[at].chars().count();
    let first = if through <= EVIDENCE_CHARS_MAX { 0 } else { before.saturating_sub(EVIDENCE_LEAD_CHARS) };
    let clipped: String = text.chars().skip(first).take(EVIDENCE_CHARS_MAX).collect();
    clipped.trim().to_owned()
}

/// At most `max` bytes of `line`, cut at a character boundary.
fn clip_bytes(line: &str, max: usize) -> &str {
    if line.len() <= max {
        return line;
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_names_become_upper_snake() {
        assert_eq!(upper_snake("IllegalAddress"), "ILLEGAL_ADDRESS");
        assert_eq!(upper_snake("InvalidPc"), "INVALID_PC");
        assert_eq!(upper_snake("ECCUncorrectable"), "ECC_UNCORRECTABLE");
        assert_eq!(upper_snake("LaunchOutOfResources"), "LAUNCH_OUT_OF_RESOURCES");
        assert_eq!(upper_snake("Assert"), "ASSERT");
        for (runtime, driver) in RUNTIME_RENAMES {
            assert!(crate::cuda::code_of(driver).is_some(), "{runtime} → {driver} is not a CUresult");
        }
        for (needle, error) in PHRASES {
            assert_eq!(needle.to_ascii_lowercase(), *needle, "needles are lower case");
            assert!(crate::cuda::code_of(error).is_some(), "{needle:?} → {error} is not a CUresult");
        }
    }

    #[test]
    fn clips_at_character_boundaries() {
        assert_eq!(clip_bytes("abc", 2), "ab");
        assert_eq!(clip_bytes("aé", 2), "a");
        assert_eq!(clip_bytes("aé", 3), "aé");
        assert_eq!(signal_error(0), "SIGNAL_UNKNOWN");
        assert_eq!(signal_error(-3), "SIGNAL_UNKNOWN");
        assert_eq!(signal_error(40), "SIGNAL_SIG40");
    }
}
