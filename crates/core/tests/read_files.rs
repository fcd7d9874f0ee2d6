//! `read_files`: many whole files at once, each test run on every backend
//! this build has, every result compared with `std::fs::read`. Lists long
//! enough go to the lanes (blocking threads with a ring each, or system
//! calls on the fallback), short ones to one task per file on the engine.
//!
//! The tree's shape comes from a seeded RNG; the seed is printed (run with
//! `--nocapture`) and `URING_FS_TEST_SEED=<n>` replays a run.

// Test helpers may unwrap and expect: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{assert_nothing_pending, choices, cpath, open_file_fds, rng, start};

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use rand::Rng;
use tokio::sync::RwLock;
use uring_fs_core::whole_file::files::{read_files, FilesRead};
use uring_fs_core::Backend;
use uring_fs_core::Contents;

/// The descriptor test takes this exclusively, so the counts it checks see
/// no other test's files.
static FD_GATE: RwLock<()> = RwLock::const_new(());

/// `n` entries: files of random sizes (many on the limits between packed,
/// own-buffer and general-path files), directories, missing paths, paths
/// through a file, symlinks.
fn tree(dir: &Path, n: usize, test: &str) -> Vec<PathBuf> {
    let mut rng = rng(test);
    let mut paths = Vec::new();
    for i in 0..n {
        let p = dir.join(format!("e{i}"));
        match rng.gen_range(0..16) {
            0 => fs::create_dir(&p).expect("mkdir"),
            1 => {
                paths.push(dir.join(format!("missing-{i}")));
                continue;
            }
            2 => {
                fs::write(&p, b"x").expect("write");
                paths.push(p.join("child"));
                continue;
            }
            3 => symlink(format!("e{}", rng.gen_range(0..=i)), &p).expect("symlink"),
            _ => {
                let edges = [
                    0usize,
                    1,
                    4095,
                    4096,
                    16383,
                    16384,
                    65535,
                    68 * 1024 - 1,
                    68 * 1024,
                    300_000,
                ];
                let len = match rng.gen_range(0..3) {
                    0 => edges[rng.gen_range(0..edges.len())],
                    _ => rng.gen_range(0..40_000),
                };
                let data: Vec<u8> = (0..len).map(|j| (j as u32 * 31 + i as u32) as u8).collect();
                fs::write(&p, data).expect("write");
            }
        }
        paths.push(p);
    }
    paths
}

/// Every result equals std's, bytes or errno; returns (read, failed).
fn check(paths: &[PathBuf], got: &FilesRead) -> (usize, usize) {
    assert_eq!(got.files.len(), paths.len());
    let (mut ok, mut failed) = (0, 0);
    for (i, p) in paths.iter().enumerate() {
        match (fs::read(p), &got.files[i]) {
            (Ok(want), Ok(_)) => {
                assert_eq!(got.bytes(i), Some(&want[..]), "{}", p.display());
                ok += 1;
            }
            (Err(e), Err(g)) => {
                assert_eq!(g.error.raw_os_error(), e.raw_os_error(), "{}", p.display());
                failed += 1;
            }
            (want, g) => panic!(
                "{}: std says {want:?}, read_files {:?}",
                p.display(),
                g.as_ref().err()
            ),
        }
    }
    (ok, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_files_equal_std_on_lanes_and_tasks() {
    let _gate = FD_GATE.read().await;
    for choice in choices() {
        let engine = start(choice);
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = tree(dir.path(), 1500, "read_files_equal_std");
        let cpaths: Vec<_> = paths.iter().map(|p| cpath(p)).collect();
        // Lanes with wide and narrow windows, then short lists (tasks).
        for concurrency in [256, 7, 1] {
            let before = engine.stats();
            let got = read_files(
                &engine,
                cpaths.clone(),
                libc::O_RDONLY,
                concurrency,
                u64::MAX,
            )
            .await;
            let after = engine.stats();
            let (ok, failed) = check(&paths, &got);
            assert!(ok > 1000 && failed > 100, "{ok} ok, {failed} failed");
            let packed = got
                .files
                .iter()
                .filter(|f| matches!(f, Ok(Contents::Packed { .. })))
                .count();
            assert!(packed > 500, "{choice:?}: {packed} packed");
            if engine.backend() == Backend::IoUring && concurrency == 256 {
                let (ops, enters) = (after.ops - before.ops, after.enters - before.enters);
                println!("{choice:?} concurrency {concurrency}: {ops} ops in {enters} enters");
                // About 3 ops per file, so a ring that batched nothing
                // across files would show about 3 per enter; here it is
                // about 100. 16 leaves room for a loaded host splitting
                // batches (32 failed once in a parallel cargo run).
                assert!(ops >= 16 * enters, "{ops} ops in {enters} enters");
            }
        }
        for chunk in paths.chunks(17).take(20) {
            let c: Vec<_> = chunk.iter().map(|p| cpath(p)).collect();
            check(
                chunk,
                &read_files(&engine, c, libc::O_RDONLY, 64, u64::MAX).await,
            );
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_files_leave_no_descriptor_open() {
    let _gate = FD_GATE.write().await;
    for choice in choices() {
        let engine = start(choice);
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = tree(dir.path(), 400, "read_files_leave_no_descriptor_open");
        let cpaths: Vec<_> = paths.iter().map(|p| cpath(p)).collect();
        let base = open_file_fds();
        for _ in 0..3 {
            let got = read_files(&engine, cpaths.clone(), libc::O_RDONLY, 64, u64::MAX).await;
            check(&paths, &got);
        }
        assert_eq!(open_file_fds(), base, "{choice:?}");
        engine.shutdown().await;
    }
}
