//! SQLite's own allocations through the process's global allocator (mimalloc in the binaries),
//! not the C library's `malloc`.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, and glibc gives each such
//! thread an arena of its own: the page cache a connection drops (in WAL mode, whenever another
//! connection commits) and the statements it prepares and frees stay resident in that thread's
//! arena: a one-shot `assay append` of 200,000 envelopes peaked at 182.6 MiB, 112.3 MiB with
//! `MALLOC_ARENA_MAX=1`, while SQLite had ~25 MiB in use; through mimalloc, 141.3 MiB with the
//! same 8 connections (BENCHMARKS.md, issue 20). mimalloc gives freed pages back to the
//! system, whichever thread frees them.
//!
// One of the files ARCHITECTURE.md names as holding `unsafe`: SQLite's C configuration API and
// the allocation callbacks it calls; every block says why it is sound.
#![allow(unsafe_code)]

use std::alloc::{Layout, alloc, dealloc, realloc};
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

use libsqlite3_sys as ffi;

/// Bytes in front of each allocation that hold its size: SQLite asks for the size of an
/// allocation (`xSize`), and Rust's allocator needs it to free one. 8 keeps the 8-byte
/// alignment SQLite requires.
const HEADER_BYTES: usize = 8;
const ALIGN_BYTES: usize = 8;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER_BYTES)?, ALIGN_BYTES).ok()
}

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    let Some(l) = usize::try_from(n).ok().and_then(layout) else { return std::ptr::null_mut() };
    // SAFETY: the layout's size is at least HEADER_BYTES (non-zero).
    let base = unsafe { alloc(l) };
    if base.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: base is valid for l.size() >= HEADER_BYTES bytes, aligned to 8.
    unsafe {
        base.cast::<u64>().write(l.size() as u64 - HEADER_BYTES as u64);
        base.add(HEADER_BYTES).cast()
    }
}

/// The allocation's base pointer and layout. Safety: `p` came from `x_malloc`/`x_realloc`.
unsafe fn base_of(p: *mut c_void) -> (*mut u8, Layout) {
    // SAFETY: p points HEADER_BYTES past the base of one of our allocations, whose first 8
    // bytes hold its size (the caller's promise).
    unsafe {
        let base = p.cast::<u8>().sub(HEADER_BYTES);
        let size = base.cast::<u64>().read() as usize;
        (base, layout(size).expect("a size this allocator stored"))
    }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only what its xMalloc/xRealloc returned, once.
    unsafe {
        let (base, l) = base_of(p);
        dealloc(base, l);
    }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SQLite calls xRealloc only with an allocation of its own and a positive size.
    let Some(new) = usize::try_from(n).ok().and_then(layout) else { return std::ptr::null_mut() };
    // SAFETY: p came from xMalloc/xRealloc (SQLite's contract); the new size is non-zero and
    // valid for the same alignment.
    unsafe {
        let (base, l) = base_of(p);
        let moved = realloc(base, l, new.size());
        if moved.is_null() {
            return std::ptr::null_mut();
        }
        moved.cast::<u64>().write(new.size() as u64 - HEADER_BYTES as u64);
        moved.add(HEADER_BYTES).cast()
    }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: SQLite asks only about allocations of its own.
    let (_, l) = unsafe { base_of(p) };
    c_int::try_from(l.size() - HEADER_BYTES).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    n.checked_add(7).map_or(n, |m| m & !7)
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Makes SQLite allocate through the global allocator; called before any connection is opened
/// (SQLite takes its allocator only before it initializes). Idempotent.
pub fn install() {
    INSTALLED.get_or_init(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLITE_CONFIG_MALLOC takes a pointer to a sqlite3_mem_methods and copies it before it returns;
        // the callbacks above are thread-safe (the global allocator is). Called once; if SQLite
        // has already initialized (something else opened a database first) it answers
        // SQLITE_MISUSE and keeps its own allocator, which is correct, only less frugal.
        let rc = unsafe {
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods as *const ffi::sqlite3_mem_methods)
        };
        if rc != ffi::SQLITE_OK {
            tracing::debug!(rc, "SQLite keeps its own allocator (it was initialized first)");
        }
        rc == ffi::SQLITE_OK
    });
}

/// Whether SQLite took [`install`]'s allocator.
#[cfg(test)]
pub fn installed() -> bool {
    INSTALLED.get().copied().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SQLite relies on: 8-byte alignment, the size asked for (rounded as xRoundup says)
    /// read back by xSize, contents kept by xRealloc, and a refusal of negative sizes.
    #[test]
    fn the_callbacks_keep_sqlites_contract() {
        // SAFETY: each pointer is used within the size it was allocated with and freed once.
        unsafe {
            let p = x_malloc(13).cast::<u8>();
            assert!(!p.is_null() && (p as usize).is_multiple_of(8));
            assert_eq!(x_size(p.cast()), 13);
            assert_eq!(x_roundup(13), 16);
            for i in 0..13 {
                p.add(i).write(i as u8);
            }
            let q = x_realloc(p.cast(), 4000).cast::<u8>();
            assert!(!q.is_null() && (q as usize).is_multiple_of(8));
            assert_eq!(x_size(q.cast()), 4000);
            assert!((0..13).all(|i| q.add(i).read() == i as u8), "realloc kept the bytes");
            x_free(q.cast());
            x_free(std::ptr::null_mut());
            assert!(x_malloc(-1).is_null());
            assert_eq!(x_size(std::ptr::null_mut()), 0);
        }
    }
}
