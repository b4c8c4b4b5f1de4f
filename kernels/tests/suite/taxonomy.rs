//! The command-cell fault taxonomy against messages as CUDA, PyTorch, Triton, JAX, CuPy,
//! cuda-gdb and compute-sanitizer print them. Each line is quoted from the public issue named
//! beside it (repository#number); lines marked "composed" join a real program's prefix or
//! format to the driver's own error string or name (CUDA runtime API, `cudaError` enum).

use assay_kernels::campaign::taxonomy::{
    EVIDENCE_CHARS_MAX, Ending, FaultClass, LINE_BYTES_MAX, NAN_IN_OUTPUT, OutputClassifier, TIMEOUT,
    classify, classify_line, is_error_name,
};

/// (line, expected error name, expected sticky)
const REAL: &[(&str, &str, bool)] = &[
    // --- Illegal address ---------------------------------------------------------------------
    // PyTorch: evo-design/evo#136, VITA-Group/TEGNAS#19.
    (
        "RuntimeError: CUDA error: an illegal memory access was encountered",
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        true,
    ),
    // compute-sanitizer: LostRuins/koboldcpp#1469.
    (
        "========= Program hit cudaErrorIllegalAddress (error 700) due to \"an illegal memory access was encountered\" on CUDA API call to cudaLaunchKernel.",
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        true,
    ),
    // JAX/XLA: openxla/xla#15945.
    (
        "jaxlib.xla_extension.XlaRuntimeError: INTERNAL: Failed to execute XLA Runtime executable: run time error: custom call 'xla.gpu.func.launch' failed: Failed to launch CUDA kernel: add with block dimensions: 128x1x1 and grid dimensions: 448x1x1: CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was encountered.",
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        true,
    ),
    // compute-sanitizer with the driver name: jax-ml/jax#3017.
    (
        "> Program hit CUDA_ERROR_ILLEGAL_ADDRESS (error 700) due to \"an illegal memory access was encountered\" on CUDA API call to cuMemcpyDtoHAsync_v2",
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        true,
    ),
    // CuPy: cupy/cupy#7482.
    (
        "CUDARuntimeError: cudaErrorIllegalAddress: an illegal memory access was encountered",
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        true,
    ),
    // NVIDIA Warp: THU-SI/Physics3D#2.
    (
        "Warp CUDA error 700: an illegal memory access was encountered (/buildAgent/work/a9ae500d09a78409/warp/native/warp.cu:223)",
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        true,
    ),
    // cuda-gdb: NVIDIA/FasterTransformer#241.
    ("CUDA Exception: Warp Illegal Address", "CUDA_ERROR_ILLEGAL_ADDRESS", true),
    (
        "Thread 1 \"decoding_exampl\" received signal CUDA_EXCEPTION_14, Warp Illegal Address.",
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        true,
    ),
    // cuda-gdb: kysucix/gipuma#18.
    ("CUDA Exception: Warp Out-of-range Address", "CUDA_ERROR_ILLEGAL_ADDRESS", true),
    // --- Misaligned address ------------------------------------------------------------------
    // PyTorch: pytorch/pytorch#32893.
    ("RuntimeError: CUDA error: misaligned address", "CUDA_ERROR_MISALIGNED_ADDRESS", true),
    // Triton through PyTorch: fla-org/flash-linear-attention#913.
    ("RuntimeError: Triton Error [CUDA]: misaligned address", "CUDA_ERROR_MISALIGNED_ADDRESS", true),
    // FlashInfer-style check macro: efeslab/Nanoflow#23.
    (
        "CUDA Error: misaligned address (716) /code/gemv/include/attention/prefill.cuh: line 1918 at function cudaLaunchKernel((void*)kernel, nblks, nthrs, args, smem_size, stream)",
        "CUDA_ERROR_MISALIGNED_ADDRESS",
        true,
    ),
    // cuda-gdb: Dao-AILab/flash-attention#470.
    ("CUDA_EXCEPTION_6, Warp Misaligned Address.", "CUDA_ERROR_MISALIGNED_ADDRESS", true),
    // nvFuser: NVIDIA/Fuser#4970.
    (
        "CUDA_ERROR_MISALIGNED_ADDRESS failed with error misaligned address",
        "CUDA_ERROR_MISALIGNED_ADDRESS",
        true,
    ),
    // --- Illegal instruction -----------------------------------------------------------------
    // PyTorch on Blackwell: IST-DASLab/marlin#40, vllm-project/vllm#18045.
    (
        "RuntimeError: CUDA error: an illegal instruction was encountered",
        "CUDA_ERROR_ILLEGAL_INSTRUCTION",
        true,
    ),
    // PyTorch's pointer line: NVIDIA/TensorRT-LLM#11313.
    (
        "Search for `cudaErrorIllegalInstruction' in https://docs.nvidia.com/cuda/cuda-runtime-api/group__CUDART__TYPES.html for more information.",
        "CUDA_ERROR_ILLEGAL_INSTRUCTION",
        true,
    ),
    // darknet: AlexeyAB/darknet#8656.
    (" CUDA Error: an illegal instruction was encountered", "CUDA_ERROR_ILLEGAL_INSTRUCTION", true),
    // --- Warp / hardware exceptions ----------------------------------------------------------
    // PyTorch: RepPointsV2 / dcp issues (Scalsol/RepPointsV2#15, WangYueFt/dcp#30).
    ("RuntimeError: CUDA error: device-side assert triggered", "CUDA_ERROR_ASSERT", true),
    (
        "  what():  CUDA error: device-side assert triggered (insert_events at /tmp/pip-req-build-4baxydiv/c10/cuda/CUDACachingAllocator.cpp:569)",
        "CUDA_ERROR_ASSERT",
        true,
    ),
    // The device's own assert() print: taishan1994/qlora-chinese-LLM#3, xhw205/GPLinker_torch#14.
    (
        "../aten/src/ATen/native/cuda/Indexing.cu:1146: indexSelectLargeIndex: block: [336,0,0], thread: [0,0,0] Assertion `srcIndex < srcSelectDimSize` failed.",
        "CUDA_ERROR_ASSERT",
        true,
    ),
    (
        "/pytorch/aten/src/ATen/native/cuda/ScatterGatherKernel.cu:115: operator(): block: [0,0,0], thread: [1,0,0] Assertion `idx_dim >= 0 && idx_dim < index_size && \"index out of bounds\"` failed.",
        "CUDA_ERROR_ASSERT",
        true,
    ),
    // Composed: PyTorch's "CUDA error: " and the cudaGetErrorString texts of 714, 718, 717.
    ("CUDA error: hardware stack error", "CUDA_ERROR_HARDWARE_STACK_ERROR", true),
    ("CUDA error: invalid program counter", "CUDA_ERROR_INVALID_PC", true),
    (
        "CUDA error: operation not supported on global/shared address space",
        "CUDA_ERROR_INVALID_ADDRESS_SPACE",
        true,
    ),
    // Composed: the CUDA samples' checkCudaErrors format (helper_cuda.h) with runtime names.
    (
        "CUDA error at kernel.cu:88 code=714(cudaErrorHardwareStackError) \"cudaDeviceSynchronize()\"",
        "CUDA_ERROR_HARDWARE_STACK_ERROR",
        true,
    ),
    (
        "CUDA error at kernel.cu:88 code=718(cudaErrorInvalidPc) \"cudaDeviceSynchronize()\"",
        "CUDA_ERROR_INVALID_PC",
        true,
    ),
    // --- Launch failures ---------------------------------------------------------------------
    // PyTorch: CSUBioGroup/PGMG#3, facebookresearch/DeepSDF#40.
    ("RuntimeError: CUDA error: unspecified launch failure", "CUDA_ERROR_LAUNCH_FAILED", true),
    // Old PyTorch (THC): pytorch/pytorch#2567.
    (
        "RuntimeError: cuda runtime error (4) : unspecified launch failure at /home/ubuntu/pytorch/torch/lib/THC/THCTensorCopy.cu:85",
        "CUDA_ERROR_LAUNCH_FAILED",
        true,
    ),
    // Composed: compute-sanitizer's line (koboldcpp#1469 above) for error 719.
    (
        "========= Program hit cudaErrorLaunchFailure (error 719) due to \"unspecified launch failure\" on CUDA API call to cudaDeviceSynchronize.",
        "CUDA_ERROR_LAUNCH_FAILED",
        true,
    ),
    // PyTorch: mrnabati/CenterFusion#76; caffe: happynear/caffe-windows#250.
    ("RuntimeError: CUDA error: the launch timed out and was terminated", "CUDA_ERROR_LAUNCH_TIMEOUT", true),
    (
        "Check failed: error == cudaSuccess (6 vs. 0)  the launch timed out and was terminated",
        "CUDA_ERROR_LAUNCH_TIMEOUT",
        true,
    ),
    // PyTorch: sxyu/svox2#6; CUDA.jl prints the short driver name: JuliaGPU/CUDAnative.jl#293.
    (
        "RuntimeError: CUDA error: too many resources requested for launch",
        "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
        false,
    ),
    (
        "ERROR: CUDA error: too many resources requested for launch (code #701, ERROR_LAUNCH_OUT_OF_RESOURCES)",
        "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
        false,
    ),
    // --- Out of memory / resources -----------------------------------------------------------
    // PyTorch ≥ 2.5: murong-xu/CADS#4.
    (
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 22.78 GiB. GPU 0 has a total capacity of 31.47 GiB of which 12.73 GiB is free. Including non-PyTorch memory, this process has 18.73 GiB memory in use.",
        "CUDA_ERROR_OUT_OF_MEMORY",
        false,
    ),
    // PyTorch 2.0–2.4: One-2-3-45/One-2-3-45#25.
    (
        "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.69 GiB (GPU 0; 14.56 GiB total capacity; 649.97 MiB already allocated; 1.31 GiB free; 1.01 GiB reserved in total by PyTorch)",
        "CUDA_ERROR_OUT_OF_MEMORY",
        false,
    ),
    // Older PyTorch: pytorch/pytorch#16417.
    (
        "RuntimeError: CUDA out of memory. Tried to allocate 12.50 MiB (GPU 0; 10.92 GiB total capacity; 8.57 MiB already allocated; 9.28 GiB free; 4.68 MiB cached)",
        "CUDA_ERROR_OUT_OF_MEMORY",
        false,
    ),
    // Composed: PyTorch's and CuPy's (cupy#7482 above) formats for error 2.
    ("RuntimeError: CUDA error: out of memory", "CUDA_ERROR_OUT_OF_MEMORY", false),
    ("CUDARuntimeError: cudaErrorMemoryAllocation: out of memory", "CUDA_ERROR_OUT_OF_MEMORY", false),
    // Triton: vllm-project/vllm#12498, triton-lang/triton#8182.
    (
        "triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: 66560, Hardware limit: 65536. Reducing block sizes or `num_stages` may help.",
        "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
        false,
    ),
    // Older Triton's wording: state-spaces/mamba#387.
    (
        "triton.runtime.autotuner.OutOfResources: out of resource: shared memory, Required: 663808, Hardware limit: 101376. Reducing block sizes or `num_stages` may help.",
        "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
        false,
    ),
    // --- New architectures -------------------------------------------------------------------
    // PyTorch on an RTX 5090D (sm_120): pytorch/pytorch#149845; llama.cpp: ggml-org/llama.cpp#4215.
    (
        "RuntimeError: CUDA error: no kernel image is available for execution on the device",
        "CUDA_ERROR_NO_BINARY_FOR_GPU",
        false,
    ),
    (
        "CUDA error 209 at /home/user/Documents/devops/llama.cpp/ggml-cuda.cu:6701: no kernel image is available for execution on the device",
        "CUDA_ERROR_NO_BINARY_FOR_GPU",
        false,
    ),
    // --- Any other CUresult name -------------------------------------------------------------
    // compute-sanitizer: SourceryTools/nvptx-tools#53.
    (
        "========= Program hit CUDA_ERROR_INVALID_CONTEXT (error 201) due to \"invalid device context\" on CUDA API call to cuCtxGetDevice.",
        "CUDA_ERROR_INVALID_CONTEXT",
        false,
    ),
    // Composed: cudarc's DriverError debug format. Driver names with no phrase of their own
    // keep their stickiness from the one table.
    (
        "DriverError(CUDA_ERROR_EXTERNAL_DEVICE, \"an external device has signaled an error\")",
        "CUDA_ERROR_EXTERNAL_DEVICE",
        true,
    ),
    (
        "DriverError(CUDA_ERROR_ECC_UNCORRECTABLE, \"uncorrectable ECC error encountered\")",
        "CUDA_ERROR_ECC_UNCORRECTABLE",
        false,
    ),
    // Composed (helper_cuda.h format): a runtime-only name keeps its own name, same shape.
    (
        "CUDA error at vectorAdd.cu:64 code=9(cudaErrorInvalidConfiguration) \"cudaGetLastError()\"",
        "CUDA_ERROR_INVALID_CONFIGURATION",
        false,
    ),
];

/// Lines that name no CUDA fault, some of them printed right beside one.
const ORDINARY: &[&str] = &[
    "",
    "CUDA available: True",
    "no CUDA errors",
    "torch.cuda.is_available() = True, device count 1",
    "step 100/1000 loss 0.2513 lr 3.0e-4",
    "12345",
    "0.000000 1.000000 nan inf",
    "Using device: cuda:0 (NVIDIA H100 80GB HBM3, sm_90)",
    "ASSAY_RESULT {\"passed\": true, \"max_abs_err\": 0.0, \"duration_us\": 12}",
    // PyTorch's follow-up lines to a CUDA error (evo-design/evo#136).
    "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.",
    "For debugging consider passing CUDA_LAUNCH_BLOCKING=1",
    "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.",
    "WARNING: This error is not recoverable.  To continue using CUDA, the process/kernel must be terminated and relaunched.",
    // A CPU SIGILL as the shell reports it: that is the signal's, not CUDA's.
    "bash: line 1: 4242 Illegal instruction     (core dumped) ./bench",
    // Host memory, not device memory.
    "Out of memory: Killed process 1234 (python3) total-vm:81234kB",
    "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 8.00 GiB for an array with shape (1073741824,) and data type float64",
    // A CPU assert has no block and thread.
    "bench: bench.c:12: main: Assertion `n > 0' failed.",
    "AssertionError: max_abs_err 0.5 > 1e-3",
    // CUTLASS's status is a refused problem, recorded as failed by exit status (wangmaolin/niti#8).
    "Got cutlass error: Error Internal at: 171",
    // Names that are not errors.
    "cudaError_t err = cudaGetLastError();",
    "grep CUDA_ERROR_ in the log",
    "CUDA_SUCCESS",
    "Fatal Python error: Segmentation fault",
];

#[test]
fn real_messages_get_their_curesult_name_and_stickiness() {
    for &(line, error, sticky) in REAL {
        let class = classify_line(line).unwrap_or_else(|| panic!("not classified: {line:?}"));
        assert_eq!(class.error, error, "{line:?}");
        assert_eq!(class.sticky, sticky, "{line:?}");
        assert!(is_error_name(&class.error), "{}", class.error);
        assert_eq!(class.evidence, line.trim(), "the evidence is the line");
    }
}

#[test]
fn ordinary_lines_name_no_fault() {
    for line in ORDINARY {
        assert_eq!(classify_line(line), None, "{line:?}");
    }
}

#[test]
fn evidence_is_one_bounded_line_that_shows_the_match() {
    let class = classify_line("\tRuntimeError: CUDA error: misaligned address\r").expect("classified");
    assert_eq!(class.evidence, "RuntimeError: CUDA error: misaligned address");
    let long = format!(
        "{} CUDA error: an illegal memory access was encountered {}",
        "é".repeat(1000),
        "x".repeat(600)
    );
    let class = classify_line(&long).expect("classified");
    assert_eq!(class.error, "CUDA_ERROR_ILLEGAL_ADDRESS");
    assert!(class.evidence.chars().count() <= EVIDENCE_CHARS_MAX);
    assert!(class.evidence.contains("an illegal memory access was encountered"), "{}", class.evidence);
    // Beyond the first LINE_BYTES_MAX bytes nothing is looked at.
    let late = format!("{}CUDA error: an illegal memory access was encountered", " ".repeat(LINE_BYTES_MAX));
    assert_eq!(classify_line(&late), None);
}

#[test]
fn the_first_sticky_class_wins_else_the_first() {
    // A PyTorch run that ran out of memory, then faulted (both printed).
    let mut output = OutputClassifier::new();
    for line in [
        "epoch 1 step 10",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
        "RuntimeError: CUDA error: an illegal memory access was encountered",
        "RuntimeError: CUDA error: unspecified launch failure",
    ] {
        output.line(line);
    }
    let class = output.finish().expect("a class");
    assert_eq!(class.error, "CUDA_ERROR_ILLEGAL_ADDRESS");
    assert!(class.sticky);

    let mut output = OutputClassifier::new();
    output.line("triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: 1, Hardware limit: 0.");
    output.line("RuntimeError: CUDA error: out of memory");
    assert_eq!(output.finish().expect("a class").error, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES");

    let mut output = OutputClassifier::new();
    for line in ORDINARY {
        output.line(line);
    }
    assert_eq!(output.finish(), None);
}

fn class_of(line: &str) -> Option<FaultClass> {
    let mut output = OutputClassifier::new();
    output.line(line);
    output.finish()
}

#[test]
fn endings_without_a_cuda_error() {
    assert_eq!(classify(Ending::Exited(0), None), None, "completed");
    assert_eq!(classify(Ending::Exited(1), None), None, "failed, by exit status");
    let timeout = classify(Ending::TimedOut, None).expect("timeout");
    assert_eq!((timeout.error.as_str(), timeout.sticky), (TIMEOUT, false));
    let segv = classify(Ending::Signaled(11), None).expect("signal");
    assert_eq!((segv.error.as_str(), segv.sticky), ("SIGNAL_SIGSEGV", false));
    assert_eq!(segv.evidence, "killed by signal 11 (SIGSEGV)");
    assert_eq!(classify(Ending::Signaled(9), None).expect("signal").error, "SIGNAL_SIGKILL");
    assert_eq!(classify(Ending::Signaled(6), None).expect("signal").error, "SIGNAL_SIGABRT");
    assert_eq!(classify(Ending::Signaled(40), None).expect("signal").error, "SIGNAL_SIG40");
    for name in [TIMEOUT, NAN_IN_OUTPUT, "SIGNAL_SIGSEGV", "SIGNAL_SIG40"] {
        assert!(is_error_name(name), "{name}");
    }
}

#[test]
fn a_cuda_error_in_the_output_wins_over_the_ending() {
    let illegal = || class_of("RuntimeError: CUDA error: an illegal memory access was encountered");
    // A Python traceback exits 1; a script that catches and prints exits 0: still the fault.
    for code in [0, 1] {
        let class = classify(Ending::Exited(code), illegal()).expect("faulted");
        assert_eq!(class.error, "CUDA_ERROR_ILLEGAL_ADDRESS");
        assert_eq!(class.evidence, "RuntimeError: CUDA error: an illegal memory access was encountered");
    }
    // SIGSEGV after an illegal-address line: the CUDA name, the signal kept in the evidence.
    let class = classify(Ending::Signaled(11), illegal()).expect("faulted");
    assert_eq!(class.error, "CUDA_ERROR_ILLEGAL_ADDRESS");
    assert!(class.sticky);
    assert_eq!(
        class.evidence,
        "RuntimeError: CUDA error: an illegal memory access was encountered (then killed by signal 11 (SIGSEGV))"
    );
    let class =
        classify(Ending::TimedOut, class_of("CUDA error: unspecified launch failure")).expect("faulted");
    assert_eq!(class.error, "CUDA_ERROR_LAUNCH_FAILED");
    assert_eq!(class.evidence, "CUDA error: unspecified launch failure (then timed out)");
    // The suffix fits inside the bound even after a full-length evidence.
    let long = format!("CUDA error: misaligned address {}", "y".repeat(2000));
    let class = classify(Ending::Signaled(6), class_of(&long)).expect("faulted");
    assert_eq!(class.evidence.chars().count(), EVIDENCE_CHARS_MAX);
    assert!(class.evidence.ends_with(" (then killed by signal 6 (SIGABRT))"), "{}", class.evidence);
}

#[test]
fn signal_name_is_still_reachable_where_callers_had_it() {
    assert_eq!(assay_kernels::campaign::signal_name(11), "SIGSEGV");
    assert_eq!(assay_kernels::campaign::taxonomy::signal_name(9), "SIGKILL");
}

/// Where a driver library is present, the driver's own strings (cuGetErrorString) classify to
/// their own CUresult names: the phrase table is checked against the driver, not a copy of it.
#[test]
fn the_drivers_own_error_strings_classify_to_their_names() {
    use cudarc::driver::DriverError;
    use cudarc::driver::sys::CUresult::*;
    if !assay_kernels::cuda::driver_library_present() {
        eprintln!("no CUDA driver library here; skipping the check against cuGetErrorString");
        return;
    }
    for result in [
        CUDA_ERROR_OUT_OF_MEMORY,
        CUDA_ERROR_NO_BINARY_FOR_GPU,
        CUDA_ERROR_ILLEGAL_ADDRESS,
        CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES,
        CUDA_ERROR_LAUNCH_TIMEOUT,
        CUDA_ERROR_ASSERT,
        CUDA_ERROR_HARDWARE_STACK_ERROR,
        CUDA_ERROR_ILLEGAL_INSTRUCTION,
        CUDA_ERROR_MISALIGNED_ADDRESS,
        CUDA_ERROR_INVALID_ADDRESS_SPACE,
        CUDA_ERROR_INVALID_PC,
        CUDA_ERROR_LAUNCH_FAILED,
    ] {
        let text = match DriverError(result).error_string() {
            Ok(text) => text.to_string_lossy().into_owned(),
            Err(error) => {
                eprintln!("the driver library here cannot name its errors ({error:?}); skipping");
                return;
            }
        };
        let line = format!("RuntimeError: CUDA error: {text}");
        let class = classify_line(&line).unwrap_or_else(|| panic!("not classified: {line:?}"));
        assert_eq!(class.error, format!("{result:?}"), "{line:?}");
    }
}
