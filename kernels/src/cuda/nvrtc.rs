//! NVRTC, opened by the path the search found (`libs.rs`), compiling CUDA C++ to PTX.
//!
//! Our own binding of the few NVRTC calls used, rather than cudarc's: cudarc opens NVRTC by
//! a fixed list of bare names that stops at `libnvrtc.so.12` and offers no way to name a path,
//! so a CUDA 13 system (which has only `libnvrtc.so.13`) would look like one without NVRTC.
//! These calls have the same C signatures in NVRTC 12 and 13.

// One of the files ARCHITECTURE.md names as holding `unsafe`: calls into NVRTC's C API through
// symbols looked up in the opened library; every block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};

use libloading::Library;

use super::libs::{CudaLibrary, NVRTC_NAMES, SearchEnv, search};

/// Longest compile log kept (NVRTC's logs can be long; the fault text is bounded anyway).
const LOG_BYTES_MAX: usize = 64 * 1024;
/// Most architectures NVRTC may list.
const ARCHS_MAX: c_int = 256;

type Program = *mut c_void;
type Status = c_int;

/// Why NVRTC could not be used or rejected a source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NvrtcError {
    /// No NVRTC library could be opened.
    #[error("the NVRTC library could not be loaded: {0}")]
    NotLoaded(String),
    /// The library lacks a call this binding needs (not an NVRTC, or a very old one).
    #[error("{path} has no {symbol}: {message}")]
    MissingSymbol {
        /// The library.
        path: String,
        /// The missing function.
        symbol: &'static str,
        /// The loader's message.
        message: String,
    },
    /// A call other than the compile itself failed.
    #[error("{call} failed: {status}")]
    Call {
        /// The NVRTC function.
        call: &'static str,
        /// NVRTC's name for the result.
        status: String,
    },
    /// The compile failed; the log says why.
    #[error("{status}: {log}")]
    Compile {
        /// NVRTC's name for the result.
        status: String,
        /// The compile log.
        log: String,
    },
    /// This NVRTC cannot compile for the device (an NVRTC older than the GPU).
    #[error(
        "NVRTC {nvrtc_version} does not support sm_{arch} (the device's compute capability); it knows sm_{supported}; \
         install an NVRTC at least as new as the GPU, or name one with ASSAY_NVRTC"
    )]
    ArchUnsupported {
        /// The device's architecture number, e.g. 121.
        arch: i32,
        /// NVRTC's `major.minor`.
        nvrtc_version: String,
        /// The newest architecture this NVRTC lists.
        supported: i32,
    },
}

/// An opened NVRTC.
#[derive(Debug)]
pub struct Nvrtc {
    lib: Library,
    path: PathBuf,
    version: (i32, i32),
}

impl Nvrtc {
    /// Opens NVRTC at `path` (a path, or a bare soname for the dynamic linker's search) and
    /// reads its version.
    pub fn open(path: &Path) -> Result<Nvrtc, NvrtcError> {
        // SAFETY: opening a library runs its initialisers; NVRTC's do no more than set up the
        // library itself.
        let lib = unsafe { Library::new(path) }
            .map_err(|e| NvrtcError::NotLoaded(format!("{}: {e}", path.display())))?;
        let mut nvrtc = Nvrtc { lib, path: path.to_path_buf(), version: (0, 0) };
        let (mut major, mut minor) = (0, 0);
        let version: unsafe extern "C" fn(*mut c_int, *mut c_int) -> Status = nvrtc.symbol("nvrtcVersion")?;
        // SAFETY: the function has this signature in every NVRTC; both pointers are to live ints.
        nvrtc.check("nvrtcVersion", unsafe { version(&mut major, &mut minor) })?;
        nvrtc.version = (major, minor);
        Ok(nvrtc)
    }

    /// The file opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// NVRTC's `(major, minor)`.
    pub fn version(&self) -> (i32, i32) {
        self.version
    }

    /// The version as text, `13.0`.
    pub fn version_text(&self) -> String {
        format!("{}.{}", self.version.0, self.version.1)
    }

    fn symbol<T: Copy>(&self, name: &'static str) -> Result<T, NvrtcError> {
        // SAFETY: every `T` asked for is the documented C signature of `name`.
        let symbol = unsafe { self.lib.get::<T>(name) }.map_err(|e| NvrtcError::MissingSymbol {
            path: self.path.display().to_string(),
            symbol: name,
            message: e.to_string(),
        })?;
        Ok(*symbol)
    }

    fn status_name(&self, status: Status) -> String {
        let Ok(text) = self.symbol::<unsafe extern "C" fn(Status) -> *const c_char>("nvrtcGetErrorString")
        else {
            return format!("NVRTC error {status}");
        };
        // SAFETY: nvrtcGetErrorString returns a static NUL-terminated string for any value.
        let pointer = unsafe { text(status) };
        if pointer.is_null() {
            return format!("NVRTC error {status}");
        }
        // SAFETY: non-null, static and NUL-terminated, as above.
        unsafe { CStr::from_ptr(pointer) }.to_string_lossy().into_owned()
    }

    fn check(&self, call: &'static str, status: Status) -> Result<(), NvrtcError> {
        if status == 0 { Ok(()) } else { Err(NvrtcError::Call { call, status: self.status_name(status) }) }
    }

    /// The real architectures this NVRTC compiles for (`[75, 80, …, 121]`).
    pub fn supported_archs(&self) -> Result<Vec<i32>, NvrtcError> {
        let count_of: unsafe extern "C" fn(*mut c_int) -> Status =
            self.symbol("nvrtcGetNumSupportedArchs")?;
        let list: unsafe extern "C" fn(*mut c_int) -> Status = self.symbol("nvrtcGetSupportedArchs")?;
        let mut count = 0;
        // SAFETY: the pointer is to a live int.
        self.check("nvrtcGetNumSupportedArchs", unsafe { count_of(&mut count) })?;
        let mut archs = vec![0; count.clamp(0, ARCHS_MAX) as usize];
        if count > ARCHS_MAX {
            return Err(NvrtcError::Call {
                call: "nvrtcGetNumSupportedArchs",
                status: format!("{count} architectures"),
            });
        }
        // SAFETY: the buffer holds the `count` ints NVRTC said it will write.
        self.check("nvrtcGetSupportedArchs", unsafe { list(archs.as_mut_ptr()) })?;
        Ok(archs)
    }

    /// Fails with [`NvrtcError::ArchUnsupported`] unless this NVRTC knows `compute_capability`.
    pub fn check_arch(&self, compute_capability: (i32, i32)) -> Result<(), NvrtcError> {
        check_arch(&self.supported_archs()?, &self.version_text(), compute_capability)
    }

    /// Compiles `source` (named `name` in messages) with `options`, returning the PTX.
    pub fn compile_ptx(&self, source: &str, name: &str, options: &[String]) -> Result<String, NvrtcError> {
        let nul = |text: &str| {
            CString::new(text).map_err(|_| NvrtcError::Call {
                call: "nvrtcCreateProgram",
                status: format!("NUL byte in {name}"),
            })
        };
        let source = nul(source)?;
        let file = nul(name)?;
        let options: Vec<CString> = options.iter().map(|o| nul(o)).collect::<Result<_, _>>()?;
        let pointers: Vec<*const c_char> = options.iter().map(|o| o.as_ptr()).collect();
        type Create = unsafe extern "C" fn(
            *mut Program,
            *const c_char,
            *const c_char,
            c_int,
            *const *const c_char,
            *const *const c_char,
        ) -> Status;
        let create: Create = self.symbol("nvrtcCreateProgram")?;
        let compile: unsafe extern "C" fn(Program, c_int, *const *const c_char) -> Status =
            self.symbol("nvrtcCompileProgram")?;
        let destroy: unsafe extern "C" fn(*mut Program) -> Status = self.symbol("nvrtcDestroyProgram")?;
        let mut program: Program = std::ptr::null_mut();
        // SAFETY: the strings live until the end of this function; no headers are passed.
        let created = unsafe {
            create(&mut program, source.as_ptr(), file.as_ptr(), 0, std::ptr::null(), std::ptr::null())
        };
        self.check("nvrtcCreateProgram", created)?;
        // SAFETY: `program` was created above; the option pointers outlive the call.
        let status = unsafe { compile(program, pointers.len() as c_int, pointers.as_ptr()) };
        let result = if status == 0 {
            self.output(program, "nvrtcGetPTXSize", "nvrtcGetPTX")
        } else {
            let log =
                self.output(program, "nvrtcGetProgramLogSize", "nvrtcGetProgramLog").unwrap_or_default();
            Err(NvrtcError::Compile { status: self.status_name(status), log })
        };
        // SAFETY: `program` was created above and is destroyed once.
        let _ = unsafe { destroy(&mut program) };
        result
    }

    /// Reads one of the program's texts (PTX or log) through its size and copy calls.
    fn output(
        &self,
        program: Program,
        size_call: &'static str,
        copy_call: &'static str,
    ) -> Result<String, NvrtcError> {
        let size_of: unsafe extern "C" fn(Program, *mut usize) -> Status = self.symbol(size_call)?;
        let copy: unsafe extern "C" fn(Program, *mut c_char) -> Status = self.symbol(copy_call)?;
        let mut size = 0usize;
        // SAFETY: `program` is live; the pointer is to a live usize.
        self.check(size_call, unsafe { size_of(program, &mut size) })?;
        let mut buffer = vec![0u8; size.max(1)];
        // SAFETY: the buffer holds the `size` bytes NVRTC said it will write.
        self.check(copy_call, unsafe { copy(program, buffer.as_mut_ptr().cast()) })?;
        let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
        buffer.truncate(end.min(if copy_call == "nvrtcGetProgramLog" { LOG_BYTES_MAX } else { usize::MAX }));
        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }
}

/// Fails with [`NvrtcError::ArchUnsupported`] unless `archs` (what NVRTC `version` lists) hold
/// the architecture of `compute_capability`.
pub fn check_arch(archs: &[i32], version: &str, compute_capability: (i32, i32)) -> Result<(), NvrtcError> {
    let arch = compute_capability.0 * 10 + compute_capability.1;
    if archs.contains(&arch) {
        return Ok(());
    }
    let supported = archs.iter().copied().max().unwrap_or(0);
    Err(NvrtcError::ArchUnsupported { arch, nvrtc_version: version.to_owned(), supported })
}

/// Opens the NVRTC the search finds (for a driver supporting CUDA `driver_major`, see
/// [`LibrarySearch::choose`](super::libs::LibrarySearch::choose)), else the first the dynamic
/// linker finds by soname.
pub fn open_found(env: &SearchEnv, driver_major: Option<u32>) -> Result<Nvrtc, NvrtcError> {
    let found = search(CudaLibrary::Nvrtc, env);
    let mut tried = Vec::new();
    let paths: Vec<PathBuf> = match found.choose(driver_major) {
        Some(candidate) => vec![candidate.path.clone()],
        None if env.vars.contains_key(super::libs::NVRTC_OVERRIDE) => Vec::new(),
        None => NVRTC_NAMES.iter().map(PathBuf::from).collect(),
    };
    for path in paths {
        match Nvrtc::open(&path) {
            Ok(nvrtc) => return Ok(nvrtc),
            Err(NvrtcError::NotLoaded(reason)) => tried.push(reason),
            Err(error) => tried.push(error.to_string()),
        }
    }
    if tried.is_empty() {
        tried.push(format!("{} files looked at, none exists", found.candidates.len()));
    }
    Err(NvrtcError::NotLoaded(tried.join("; ")))
}
