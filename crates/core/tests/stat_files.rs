//! `stat_files`: batched stat/lstat of many paths, each test run on every
//! backend this build has (io_uring and the thread-pool fallback), every
//! result compared with what std (`metadata`, `symlink_metadata`) says.
//!
//! The tree's shape comes from a seeded RNG; the seed is printed (run with
//! `--nocapture`) and `URING_FS_TEST_SEED=<n>` replays a run.

// Test helpers may unwrap and expect: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{assert_nothing_pending, choices, cpath, rng, start};

use std::ffi::CString;
use std::fs::{self, Metadata};
use std::future::{poll_fn, Future};
use std::io;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::Poll;
use std::time::UNIX_EPOCH;

use rand::Rng;
use uring_fs_core::batch::stat_files::{stat_files, syscall_name};
use uring_fs_core::Backend;
use uring_fs_core::{PathStat, Timespec};

/// A tree of `n` entries: files of assorted sizes, directories, symlinks to
/// each (and dangling ones, and a loop), plus paths that fail: missing,
/// through a file (ENOTDIR), a name too long, the empty path.
fn tree(dir: &Path, n: usize, test: &str) -> Vec<PathBuf> {
    let mut rng = rng(test);
    let mut paths = Vec::new();
    let loop_a = dir.join("loop-a");
    symlink(dir.join("loop-b"), &loop_a).expect("symlink");
    symlink(&loop_a, dir.join("loop-b")).expect("symlink");
    paths.push(loop_a);
    paths.push(dir.join("x".repeat(300)));
    paths.push(PathBuf::new());
    for i in 0..n {
        let p = dir.join(format!("e{i}"));
        match rng.gen_range(0..12) {
            0 => fs::create_dir(&p).expect("mkdir"),
            1 => {
                // Relative, to an earlier entry (a file, dir or missing).
                let to = format!("e{}", rng.gen_range(0..=i));
                symlink(to, &p).expect("symlink");
            }
            2 => symlink(dir.join(format!("dangling-{i}")), &p).expect("symlink"),
            3 => {
                // Through a regular file: ENOTDIR.
                fs::write(&p, b"x").expect("write");
                paths.push(p.join("child"));
            }
            4 => {
                paths.push(dir.join(format!("missing-{i}")));
                continue;
            }
            _ => {
                let len = [0usize, 1, 4095, 4096, 4097, 100_000][rng.gen_range(0..6)];
                fs::write(&p, vec![7u8; len]).expect("write");
            }
        }
        paths.push(p);
    }
    paths
}

fn timespec(sec: i64, nsec: i64) -> Timespec {
    Timespec {
        sec,
        nsec: nsec as u32,
    }
}

/// What std says, as a `PathStat`. std's `created()` fails where the
/// filesystem (or statx's mask) has no birth time; then statx reports zero.
fn expected(m: &Metadata) -> PathStat {
    let birthtime = match m.created() {
        Ok(t) => {
            let d = t.duration_since(UNIX_EPOCH).expect("birth after 1970");
            timespec(d.as_secs() as i64, i64::from(d.subsec_nanos()))
        }
        Err(_) => Timespec::default(),
    };
    PathStat {
        dev: m.dev(),
        ino: m.ino(),
        mode: m.mode(),
        nlink: m.nlink(),
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev(),
        size: m.size(),
        blksize: m.blksize(),
        blocks: m.blocks(),
        atime: timespec(m.atime(), m.atime_nsec()),
        mtime: timespec(m.mtime(), m.mtime_nsec()),
        ctime: timespec(m.ctime(), m.ctime_nsec()),
        birthtime,
    }
}

fn check(paths: &[PathBuf], got: &[io::Result<PathStat>], follow: bool) -> (usize, usize) {
    assert_eq!(got.len(), paths.len());
    let (mut ok, mut failed) = (0, 0);
    for (p, g) in paths.iter().zip(got) {
        let want = if follow {
            fs::metadata(p)
        } else {
            fs::symlink_metadata(p)
        };
        match (want, g) {
            (Ok(m), Ok(s)) => {
                assert_eq!(
                    *s,
                    expected(&m),
                    "{} ({})",
                    p.display(),
                    syscall_name(follow)
                );
                assert_eq!(s.is_file(), m.is_file());
                assert_eq!(s.is_dir(), m.is_dir());
                assert_eq!(s.is_symlink(), m.file_type().is_symlink());
                ok += 1;
            }
            (Err(e), Err(g)) => {
                assert_eq!(g.raw_os_error(), e.raw_os_error(), "{}", p.display());
                failed += 1;
            }
            (want, g) => panic!("{}: std says {want:?}, stat_files {g:?}", p.display()),
        }
    }
    (ok, failed)
}

fn cpaths(paths: &[PathBuf]) -> Vec<CString> {
    paths.iter().map(|p| cpath(p)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stat_and_lstat_equal_std() {
    for choice in choices() {
        let engine = start(choice);
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = tree(dir.path(), 2000, "stat_and_lstat_equal_std");
        for follow in [true, false] {
            let before = engine.stats();
            let got = stat_files(&engine, cpaths(&paths), follow, 256).await;
            let after = engine.stats();
            let (ok, failed) = check(&paths, &got, follow);
            assert!(ok > 1000 && failed > 100, "{ok} ok, {failed} failed");
            let errnos: Vec<_> = got
                .iter()
                .filter_map(|r| r.as_ref().err()?.raw_os_error())
                .collect();
            for errno in [libc::ENOENT, libc::ENOTDIR, libc::ENAMETOOLONG] {
                assert!(errnos.contains(&errno), "{choice:?}: no errno {errno}");
            }
            // A loop fails stat and succeeds as lstat.
            assert_eq!(
                got[0].as_ref().err().and_then(io::Error::raw_os_error),
                follow.then_some(libc::ELOOP)
            );
            let ops = after.ops - before.ops;
            assert_eq!(ops, paths.len() as u64, "{choice:?}: one op per path");
            if engine.backend() == Backend::IoUring {
                let enters = after.enters - before.enters;
                println!("{}: {ops} ops in {enters} enters", syscall_name(follow));
                assert!(ops >= 16 * enters, "{ops} ops in {enters} enters");
            }
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_concurrency_keeps_the_order() {
    for choice in choices() {
        let engine = start(choice);
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = tree(dir.path(), 300, "any_concurrency_keeps_the_order");
        for concurrency in [0, 1, 3, 1000] {
            let got = stat_files(&engine, cpaths(&paths), true, concurrency).await;
            check(&paths, &got, true);
        }
        assert!(stat_files(&engine, Vec::new(), true, 8).await.is_empty());
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

/// Paths relative to the working directory resolve as stat(2) resolves
/// them (io_uring's `AT_FDCWD` is the process's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_paths_and_special_files() {
    let paths: Vec<PathBuf> = ["Cargo.toml", "src", ".", "/", "/dev/null", "/proc/self"]
        .iter()
        .map(PathBuf::from)
        .collect();
    for choice in choices() {
        let engine = start(choice);
        for follow in [true, false] {
            let got = stat_files(&engine, cpaths(&paths), follow, 4).await;
            let (ok, _) = check(&paths, &got, follow);
            assert_eq!(ok, paths.len());
        }
        // Node's rdev for a character device is makedev(major, minor).
        let null = stat_files(&engine, vec![cpath(Path::new("/dev/null"))], true, 1).await;
        let null = null[0].as_ref().expect("stat /dev/null");
        assert_eq!(null.rdev, libc::makedev(1, 3));
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

/// A batch given up half-way leaves nothing running and nothing leaked: the
/// ops in flight keep their paths and statx blocks until their CQEs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_batch_is_safe() {
    for choice in choices() {
        let engine = start(choice);
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = tree(dir.path(), 500, "dropped_batch_is_safe");
        {
            let mut fut = pin!(stat_files(&engine, cpaths(&paths), false, 128));
            for _ in 0..3 {
                let polled = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_ready())).await;
                assert!(!polled, "{choice:?}: finished at once");
                tokio::task::yield_now().await;
            }
        }
        // The engine still works after the drop.
        let got = stat_files(&engine, cpaths(&paths), false, 128).await;
        check(&paths, &got, false);
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}
