//! Helpers shared by the engine's integration tests.
#![allow(dead_code)] // each test crate uses its own subset

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

use uring_fs_core::{Backend, Engine};

pub fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).expect("path without NUL")
}

/// Descriptors of this process that name a filesystem path.
pub fn open_file_fds() -> usize {
    let entries = std::fs::read_dir("/proc/self/fd").expect("list /proc/self/fd");
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|target| target.is_absolute() && !target.starts_with("/proc"))
        .count()
}

/// Waits (polling) until `cond` holds; false if it did not within `limit`.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// After the engine's shutdown: nothing it started is still running.
pub async fn assert_nothing_pending(engine: &Engine) {
    if engine.backend() == Backend::IoUring {
        // Every SQE produces one CQE: after shutdown all were reaped.
        let s = engine.stats();
        assert_eq!(
            s.ops, s.completions,
            "io_uring ops still in the kernel: {s:?}"
        );
    } else {
        // Shutdown does not wait for pool jobs; they end on their own.
        let done = eventually(Duration::from_secs(5), || {
            let s = engine.stats();
            s.ops == s.completions
        })
        .await;
        assert!(done, "fallback jobs still running: {:?}", engine.stats());
    }
}
