//! Helpers shared by the engine's integration tests.
#![allow(dead_code)] // each test crate uses its own subset
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation is the test failing

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use uring_fs_core::{Backend, Choice, Engine};

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

pub const HAS_URING: bool = cfg!(all(target_os = "linux", feature = "io-uring"));

/// The backends this build can start.
pub fn choices() -> Vec<Choice> {
    if HAS_URING {
        vec![Choice::IoUring, Choice::Fallback]
    } else {
        vec![Choice::Fallback]
    }
}

pub fn start(choice: Choice) -> Engine {
    let engine = Engine::start(choice).unwrap_or_else(|e| panic!("{choice:?}: {e}"));
    let want = match choice {
        Choice::IoUring => Backend::IoUring,
        _ => Backend::Fallback,
    };
    assert_eq!(engine.backend(), want);
    engine
}

pub fn rng(test: &str) -> StdRng {
    let base: u64 = std::env::var("URING_FS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_F00D);
    // A different (but fixed) stream per test, so tests do not depend on
    // which ran first.
    let seed = test.bytes().fold(base, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    println!("{test}: URING_FS_TEST_SEED={base} (stream seed {seed:#x})");
    StdRng::seed_from_u64(seed)
}

/// A file `name` in `dir` holding `len` random bytes: its path and bytes.
pub fn random_file(dir: &Path, name: &str, rng: &mut StdRng, len: usize) -> (PathBuf, Vec<u8>) {
    let p = dir.join(name);
    let data = random_bytes(rng, len);
    std::fs::write(&p, &data).expect("write");
    (p, data)
}

pub fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}
