//! `Choice::Auto` falls back for real when io_uring is blocked.
//!
//! The parent tests re-run this very test binary under `no-io-uring` (the
//! `uring-fs-testkit` seccomp wrapper, which makes `io_uring_setup` fail with
//! EPERM or ENOSYS) with `CHILD_ENV` set, selecting `child_under_seccomp`,
//! which then checks the engine from inside the filtered process. Without
//! `CHILD_ENV` that test does nothing.
#![cfg(target_os = "linux")]
// Test helpers may unwrap and expect: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use tokio::io::AsyncReadExt;
use uring_fs_core::{Backend, Choice, Engine, Reader, ReaderOptions};

const CHILD_ENV: &str = "URING_FS_AUTO_FALLBACK_CHILD_ERRNO";
const HAS_URING: bool = cfg!(feature = "io-uring");

/// Builds (if needed) and finds `no-io-uring` next to this test binary's
/// profile directory: `target/<profile>/deps/auto_fallback-*` ->
/// `target/<profile>/no-io-uring`.
fn no_io_uring() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary inside target/<profile>/deps");
    let bin = profile_dir.join("no-io-uring");
    let target_dir = profile_dir.parent().expect("target dir");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    // Always ask cargo: a no-op when the binary is fresh, and never a stale
    // filter from an older checkout.
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "uring-fs-testkit",
            "--bin",
            "no-io-uring",
        ])
        .args(["--profile", profile])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status();
    match status {
        Ok(s) if s.success() => {}
        other if bin.exists() => {
            eprintln!(
                "warning: cargo build of no-io-uring failed ({other:?}); using the existing binary"
            );
        }
        other => panic!("cannot build no-io-uring: {other:?}"),
    }
    assert!(bin.exists(), "{} missing after the build", bin.display());
    bin
}

fn run_child(wrapper_args: &[&str], errno: i32) {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(no_io_uring())
        .args(wrapper_args)
        .arg("--")
        .arg(exe)
        .args([
            "--exact",
            "child_under_seccomp",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, errno.to_string())
        .env_remove("URING_FS_BACKEND")
        .output()
        .expect("spawn no-io-uring");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child under seccomp failed: {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    // libtest exits 0 when the filter matches nothing: make sure it ran.
    let marker = format!("child ok: errno {errno}");
    assert!(
        stdout.contains(&marker),
        "child did not run:\n{stdout}\n{stderr}"
    );
}

#[test]
fn auto_falls_back_when_io_uring_setup_is_eperm() {
    run_child(&[], libc::EPERM);
}

#[test]
fn auto_falls_back_when_io_uring_setup_is_enosys() {
    run_child(&["--errno=ENOSYS"], libc::ENOSYS);
}

/// Without a filter, on this machine (io_uring available), Auto is io_uring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_picks_io_uring_when_available() {
    let engine = Engine::start(Choice::Auto).expect("start");
    if HAS_URING {
        assert_eq!(
            engine.backend(),
            Backend::IoUring,
            "{:?}",
            engine.fallback_reason()
        );
        assert_eq!(engine.fallback_reason(), None);
    } else {
        assert_eq!(engine.backend(), Backend::Fallback);
    }
    engine.shutdown().await;
}

/// Runs inside `no-io-uring` only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_under_seccomp() {
    let Ok(errno) = std::env::var(CHILD_ENV) else {
        return;
    };
    let errno: i32 = errno.parse().expect("errno number");
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    assert!(
        status.contains("\nSeccomp:\t2\n"),
        "not under a filter:\n{status}"
    );

    // Choice::IoUring reports the kernel's refusal as it is.
    let err = Engine::start(Choice::IoUring)
        .err()
        .expect("io_uring must not start under the filter");
    if HAS_URING {
        assert_eq!(err.raw_os_error(), Some(errno), "{err}");
    } else {
        assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
    }

    // Choice::Auto falls back and says why.
    let engine = Engine::start(Choice::Auto).expect("Auto always starts");
    assert_eq!(engine.backend(), Backend::Fallback);
    let reason = engine.fallback_reason().expect("a reason").to_string();
    if HAS_URING {
        let os = io::Error::from_raw_os_error(errno).to_string();
        assert!(
            reason.contains(&os),
            "reason {reason:?} should mention {os:?}"
        );
    }

    // And the fallback really reads.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("f");
    let data: Vec<u8> = (0..300_007u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&p, &data).expect("write");
    let path = CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
    let fd = engine.open(path, libc::O_RDONLY, 0).await.expect("open");
    assert_eq!(
        engine.fstat(fd).await.expect("fstat").size,
        data.len() as u64
    );
    let opts = ReaderOptions {
        chunk_size: 65536,
        ..Default::default()
    };
    let mut reader = Reader::new(engine.clone(), fd, opts);
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.expect("read");
    assert!(out == data, "fallback read wrong bytes");
    reader.finish().await;
    engine.close(fd).await.expect("close");
    let s = engine.stats();
    assert_eq!(s.enters, 0, "the fallback never enters io_uring: {s:?}");
    assert_eq!(s.bytes, data.len() as u64);
    engine.shutdown().await;
    println!("child ok: errno {errno} ({reason})");
}
