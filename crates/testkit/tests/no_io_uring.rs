//! `no-io-uring` really blocks io_uring_setup, and only that, in the command
//! it runs. The parent tests re-run this test binary under the filter with
//! `PROBE_ENV` set; the `child_probe` test then checks from the inside.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
// Test helpers may unwrap and expect: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

const PROBE_ENV: &str = "NO_IO_URING_PROBE_ERRNO";
const BIN: &str = env!("CARGO_BIN_EXE_no-io-uring");

fn run_probe(args: &[&str], errno: i32) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(BIN)
        .args(args)
        .arg(exe)
        .args(["--exact", "child_probe", "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, errno.to_string())
        .output()
        .expect("spawn no-io-uring");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // libtest exits 0 when a filter matches nothing: make sure it ran.
    assert!(
        stdout.contains(&format!("probe ok: errno {errno}")),
        "the child test did not run:\n{stdout}"
    );
    out
}

#[test]
fn blocks_io_uring_setup_with_eperm_by_default() {
    run_probe(&[], libc::EPERM);
}

#[test]
fn blocks_io_uring_setup_with_enosys_on_request() {
    run_probe(&["--errno=ENOSYS"], libc::ENOSYS);
}

#[test]
fn passes_the_exit_status_through() {
    let st = Command::new(BIN)
        .args(["--", "sh", "-c", "exit 7"])
        .status()
        .expect("spawn");
    assert_eq!(st.code(), Some(7));
}

#[test]
fn reports_usage_errors_with_status_2() {
    for args in [
        &[][..],
        &["--errno=EBADF", "true"][..],
        &["--bogus", "true"][..],
        &["/nonexistent/command"][..],
    ] {
        let out = Command::new(BIN).args(args).output().expect("spawn");
        assert_eq!(out.status.code(), Some(2), "args {args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("no-io-uring: "),
            "args {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs only under `no-io-uring` (with `PROBE_ENV` set).
#[test]
fn child_probe() {
    let Ok(want) = std::env::var(PROBE_ENV) else {
        return;
    };
    let want: i32 = want.parse().expect("errno number");
    let status = std::fs::read_to_string("/proc/self/status").expect("read status");
    assert!(status.contains("\nSeccomp:\t2\n"), "{status}");
    assert!(status.contains("\nNoNewPrivs:\t1\n"), "{status}");

    // struct io_uring_params is 120 bytes; all-zero asks for defaults.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads and writes at most 120 bytes of params,
    // which is a live local array.
    let ret = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    let err = std::io::Error::last_os_error();
    if ret >= 0 {
        // SAFETY: ret is the ring descriptor just created and owned here.
        unsafe { libc::close(ret as i32) };
        panic!("io_uring_setup succeeded under the filter");
    }
    assert_eq!(err.raw_os_error(), Some(want), "{err}");

    // Other system calls (threads, files, time) still work.
    let t = std::thread::spawn(|| std::fs::read("/proc/self/stat").map(|v| v.len()));
    assert!(t.join().expect("thread").expect("read") > 0);
    println!("probe ok: errno {want}");
}
