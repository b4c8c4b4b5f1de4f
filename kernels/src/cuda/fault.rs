//! CUDA driver errors as the ledger records them.

use serde::{Deserialize, Serialize};

use cudarc::driver::sys::CUresult;

/// CUresult codes after which the context is unusable: every code whose description in the
/// CUDA driver manual says "the process must be terminated and relaunched" (PyTorch's
/// `c10/cuda/CUDAMiscFunctions.cpp` keeps the same list): ILLEGAL_ADDRESS (700),
/// LAUNCH_TIMEOUT (702), ASSERT (710), HARDWARE_STACK_ERROR (714), ILLEGAL_INSTRUCTION (715),
/// MISALIGNED_ADDRESS (716), INVALID_ADDRESS_SPACE (717), INVALID_PC (718), LAUNCH_FAILED
/// (719) and EXTERNAL_DEVICE (911). The one table of stickiness: name lookups go through
/// [`code_of`] to it.
pub const STICKY_CODES: [u32; 10] = [700, 702, 710, 714, 715, 716, 717, 718, 719, 911];

/// Whether a CUresult code poisons the context.
pub fn is_sticky(code: u32) -> bool {
    STICKY_CODES.contains(&code)
}

/// Whether the CUresult named `name` (e.g. `CUDA_ERROR_ASSERT`) poisons the context; false for
/// a name that is not a CUresult.
pub fn is_sticky_name(name: &str) -> bool {
    code_of(name).is_some_and(is_sticky)
}

/// The CUresult number of a CUresult name, e.g. 700 for `CUDA_ERROR_ILLEGAL_ADDRESS`; `None`
/// for a name the driver headers this crate is built against do not have. Names come from
/// the enum itself (its `Debug`), so name and number cannot disagree.
pub fn code_of(name: &str) -> Option<u32> {
    static TABLE: std::sync::OnceLock<Vec<(String, u32)>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table: Vec<(String, u32)> =
            CU_RESULTS.iter().map(|result| (format!("{result:?}"), *result as u32)).collect();
        table.sort();
        table
    });
    table.binary_search_by(|(known, _)| known.as_str().cmp(name)).ok().map(|index| table[index].1)
}

/// Every CUresult of the CUDA 12.8 driver headers, for [`code_of`].
const CU_RESULTS: &[CUresult] = {
    use CUresult::*;
    &[
        CUDA_SUCCESS,
        CUDA_ERROR_INVALID_VALUE,
        CUDA_ERROR_OUT_OF_MEMORY,
        CUDA_ERROR_NOT_INITIALIZED,
        CUDA_ERROR_DEINITIALIZED,
        CUDA_ERROR_PROFILER_DISABLED,
        CUDA_ERROR_PROFILER_NOT_INITIALIZED,
        CUDA_ERROR_PROFILER_ALREADY_STARTED,
        CUDA_ERROR_PROFILER_ALREADY_STOPPED,
        CUDA_ERROR_STUB_LIBRARY,
        CUDA_ERROR_DEVICE_UNAVAILABLE,
        CUDA_ERROR_NO_DEVICE,
        CUDA_ERROR_INVALID_DEVICE,
        CUDA_ERROR_DEVICE_NOT_LICENSED,
        CUDA_ERROR_INVALID_IMAGE,
        CUDA_ERROR_INVALID_CONTEXT,
        CUDA_ERROR_CONTEXT_ALREADY_CURRENT,
        CUDA_ERROR_MAP_FAILED,
        CUDA_ERROR_UNMAP_FAILED,
        CUDA_ERROR_ARRAY_IS_MAPPED,
        CUDA_ERROR_ALREADY_MAPPED,
        CUDA_ERROR_NO_BINARY_FOR_GPU,
        CUDA_ERROR_ALREADY_ACQUIRED,
        CUDA_ERROR_NOT_MAPPED,
        CUDA_ERROR_NOT_MAPPED_AS_ARRAY,
        CUDA_ERROR_NOT_MAPPED_AS_POINTER,
        CUDA_ERROR_ECC_UNCORRECTABLE,
        CUDA_ERROR_UNSUPPORTED_LIMIT,
        CUDA_ERROR_CONTEXT_ALREADY_IN_USE,
        CUDA_ERROR_PEER_ACCESS_UNSUPPORTED,
        CUDA_ERROR_INVALID_PTX,
        CUDA_ERROR_INVALID_GRAPHICS_CONTEXT,
        CUDA_ERROR_NVLINK_UNCORRECTABLE,
        CUDA_ERROR_JIT_COMPILER_NOT_FOUND,
        CUDA_ERROR_UNSUPPORTED_PTX_VERSION,
        CUDA_ERROR_JIT_COMPILATION_DISABLED,
        CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY,
        CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC,
        CUDA_ERROR_CONTAINED,
        CUDA_ERROR_INVALID_SOURCE,
        CUDA_ERROR_FILE_NOT_FOUND,
        CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND,
        CUDA_ERROR_SHARED_OBJECT_INIT_FAILED,
        CUDA_ERROR_OPERATING_SYSTEM,
        CUDA_ERROR_INVALID_HANDLE,
        CUDA_ERROR_ILLEGAL_STATE,
        CUDA_ERROR_LOSSY_QUERY,
        CUDA_ERROR_NOT_FOUND,
        CUDA_ERROR_NOT_READY,
        CUDA_ERROR_ILLEGAL_ADDRESS,
        CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES,
        CUDA_ERROR_LAUNCH_TIMEOUT,
        CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING,
        CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED,
        CUDA_ERROR_PEER_ACCESS_NOT_ENABLED,
        CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE,
        CUDA_ERROR_CONTEXT_IS_DESTROYED,
        CUDA_ERROR_ASSERT,
        CUDA_ERROR_TOO_MANY_PEERS,
        CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED,
        CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED,
        CUDA_ERROR_HARDWARE_STACK_ERROR,
        CUDA_ERROR_ILLEGAL_INSTRUCTION,
        CUDA_ERROR_MISALIGNED_ADDRESS,
        CUDA_ERROR_INVALID_ADDRESS_SPACE,
        CUDA_ERROR_INVALID_PC,
        CUDA_ERROR_LAUNCH_FAILED,
        CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE,
        CUDA_ERROR_TENSOR_MEMORY_LEAK,
        CUDA_ERROR_NOT_PERMITTED,
        CUDA_ERROR_NOT_SUPPORTED,
        CUDA_ERROR_SYSTEM_NOT_READY,
        CUDA_ERROR_SYSTEM_DRIVER_MISMATCH,
        CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE,
        CUDA_ERROR_MPS_CONNECTION_FAILED,
        CUDA_ERROR_MPS_RPC_FAILURE,
        CUDA_ERROR_MPS_SERVER_NOT_READY,
        CUDA_ERROR_MPS_MAX_CLIENTS_REACHED,
        CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED,
        CUDA_ERROR_MPS_CLIENT_TERMINATED,
        CUDA_ERROR_CDP_NOT_SUPPORTED,
        CUDA_ERROR_CDP_VERSION_MISMATCH,
        CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
        CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
        CUDA_ERROR_STREAM_CAPTURE_MERGE,
        CUDA_ERROR_STREAM_CAPTURE_UNMATCHED,
        CUDA_ERROR_STREAM_CAPTURE_UNJOINED,
        CUDA_ERROR_STREAM_CAPTURE_ISOLATION,
        CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,
        CUDA_ERROR_CAPTURED_EVENT,
        CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD,
        CUDA_ERROR_TIMEOUT,
        CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE,
        CUDA_ERROR_EXTERNAL_DEVICE,
        CUDA_ERROR_INVALID_CLUSTER_SIZE,
        CUDA_ERROR_FUNCTION_NOT_LOADED,
        CUDA_ERROR_INVALID_RESOURCE_TYPE,
        CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION,
        CUDA_ERROR_KEY_ROTATION,
        CUDA_ERROR_UNKNOWN,
    ]
};

/// A CUDA driver error: its CUresult number, its name (e.g. `CUDA_ERROR_ILLEGAL_ADDRESS`)
/// and whether it is sticky.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CudaFault {
    /// The CUresult number.
    pub code: u32,
    /// The CUresult name.
    pub name: String,
    /// Whether the context is unusable afterwards.
    pub sticky: bool,
}

impl CudaFault {
    /// From the driver's error. Reads the name from the enum itself, never from the driver
    /// library (which may be absent, in which case asking it would panic).
    pub fn from_driver(error: &cudarc::driver::DriverError) -> Self {
        let code = error.0 as u32;
        CudaFault { code, name: format!("{:?}", error.0), sticky: is_sticky(code) }
    }
}

impl std::fmt::Display for CudaFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.code)?;
        if self.sticky {
            f.write_str(", sticky")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cudarc::driver::DriverError;

    #[test]
    fn names_and_stickiness_without_a_driver() {
        let fault = CudaFault::from_driver(&DriverError(CUresult::CUDA_ERROR_ILLEGAL_ADDRESS));
        assert_eq!(fault.name, "CUDA_ERROR_ILLEGAL_ADDRESS");
        assert_eq!(fault.code, 700);
        assert!(fault.sticky);
        for (result, code) in [
            (CUresult::CUDA_ERROR_ILLEGAL_INSTRUCTION, 715),
            (CUresult::CUDA_ERROR_MISALIGNED_ADDRESS, 716),
            (CUresult::CUDA_ERROR_LAUNCH_FAILED, 719),
        ] {
            let fault = CudaFault::from_driver(&DriverError(result));
            assert_eq!(fault.code, code);
            assert!(fault.sticky, "{}", fault.name);
        }
        let oom = CudaFault::from_driver(&DriverError(CUresult::CUDA_ERROR_OUT_OF_MEMORY));
        assert_eq!(oom.name, "CUDA_ERROR_OUT_OF_MEMORY");
        assert!(!oom.sticky);
        assert_eq!(oom.to_string(), "CUDA_ERROR_OUT_OF_MEMORY (2)");
    }

    #[test]
    fn names_map_to_codes_and_stickiness_comes_from_the_codes() {
        assert_eq!(code_of("CUDA_ERROR_ILLEGAL_ADDRESS"), Some(700));
        assert_eq!(code_of("CUDA_ERROR_NO_BINARY_FOR_GPU"), Some(209));
        assert_eq!(code_of("CUDA_ERROR_UNKNOWN"), Some(999));
        assert_eq!(code_of("CUDA_ERROR_NOT_A_THING"), None);
        assert_eq!(code_of("cuda_error_illegal_address"), None);
        for code in STICKY_CODES {
            let name = CU_RESULTS.iter().find(|r| **r as u32 == code).map(|r| format!("{r:?}"));
            let name = name.unwrap_or_else(|| panic!("sticky code {code} is not a CUresult"));
            assert!(is_sticky_name(&name), "{name}");
        }
        for name in
            ["CUDA_ERROR_OUT_OF_MEMORY", "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "CUDA_ERROR_NOT_A_THING"]
        {
            assert!(!is_sticky_name(name), "{name}");
        }
        let mut codes: Vec<u32> = CU_RESULTS.iter().map(|r| *r as u32).collect();
        codes.dedup();
        assert_eq!(codes.len(), CU_RESULTS.len(), "each CUresult once, in order");
    }
}
