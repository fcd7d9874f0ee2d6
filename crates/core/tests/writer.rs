//! The write side: `Engine::write_all` (the batch writer), `writev` and
//! `fsync`, each test run on every backend this build has (io_uring and the
//! thread-pool fallback).
//!
//! Random part sizes and counts come from a seeded RNG; the seed is printed
//! (run with `--nocapture`) and `URING_FS_TEST_SEED=<n>` replays a run.
//!
//! Every test takes `FD_GATE` exclusively, so the descriptor counts they
//! check see no other test's files. The RLIMIT_FSIZE test re-runs this test
//! binary with `CHILD_ENV` set, selecting `child_under_rlimit_fsize` (which
//! does nothing without it): the limit, and ignoring SIGXFSZ, stay in that
//! process.

// Test helpers may unwrap and expect: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{
    assert_nothing_pending, choices, cpath, eventually, open_file_fds, random_bytes, rng, start,
};

use std::ffi::CString;
use std::future::{poll_fn, Future};
use std::os::fd::RawFd;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use tokio::sync::RwLock;
use uring_fs_core::{
    Choice, Engine, SyncMode, WriteOutcome, WriteSource, CURRENT_POSITION, IOV_MAX,
};

static FD_GATE: RwLock<()> = RwLock::const_new(());

const CHILD_ENV: &str = "URING_FS_WRITER_RLIMIT_CHILD";

/// `count` parts of random length up to `max_len`, about one in ten empty.
fn random_parts(rng: &mut StdRng, count: usize, max_len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            let len = if rng.gen_ratio(1, 10) {
                0
            } else {
                rng.gen_range(1..=max_len)
            };
            random_bytes(rng, len)
        })
        .collect()
}

fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// `base` with `data` written over it at `offset` (a gap reads as zeros).
fn overlay(base: &[u8], offset: usize, data: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    if data.is_empty() {
        // Writing nothing does not move the end of the file.
        return out;
    }
    if out.len() < offset + data.len() {
        out.resize(offset + data.len(), 0);
    }
    out[offset..offset + data.len()].copy_from_slice(data);
    out
}

async fn open(engine: &Engine, path: &Path, flags: i32) -> RawFd {
    engine
        .open(cpath(path), flags, 0o644)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn file_position(fd: RawFd) -> i64 {
    // SAFETY: lseek takes no pointers; fd is open in the caller.
    unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) }
}

fn errno(out: &WriteOutcome) -> Option<i32> {
    out.error.as_ref().and_then(|e| e.raw_os_error())
}

fn assert_complete(out: &WriteOutcome, want: u64, ctx: &str) {
    assert!(out.error.is_none(), "{ctx}: {:?}", out.error);
    assert_eq!(out.written, want, "{ctx}: written");
    assert_eq!(out.source.len(), want, "{ctx}: source handed back");
}

fn random_sync(rng: &mut StdRng) -> SyncMode {
    match rng.gen_range(0..3) {
        0 => SyncMode::None,
        1 => SyncMode::Data,
        _ => SyncMode::Full,
    }
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_all_puts_random_batches_at_their_offsets() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("write_all_puts_random_batches_at_their_offsets");
    let dir = tempfile::tempdir().expect("tempdir");
    // (parts, longest part): empty, single, a few, exactly one full writev,
    // one past it, and several linked writevs.
    let cases = [
        (0, 1),
        (1, 200_000),
        (17, 9000),
        (IOV_MAX, 64),
        (IOV_MAX + 1, 64),
        (3000, 1500),
        (2 * IOV_MAX + 7, 700),
    ];
    for choice in choices() {
        let engine = start(choice);
        let base_fds = open_file_fds();
        let written_before = engine.stats().bytes_written;
        let mut total_written = 0;
        for (i, &(count, max_len)) in cases.iter().enumerate() {
            for round in 0..3 {
                let parts = random_parts(&mut rng, count, max_len);
                let data = concat(&parts);
                let orig_len = rng.gen_range(0..100_000);
                let original = random_bytes(&mut rng, orig_len);
                // At the start, inside, at the end, or past the end (a hole).
                let offset = match round {
                    0 => 0,
                    1 => rng.gen_range(0..=orig_len),
                    _ => orig_len + rng.gen_range(0..10_000),
                };
                let sync = random_sync(&mut rng);
                let ctx = format!("{choice:?} case {i} ({count} parts) at {offset} {sync:?}");
                let path = dir.path().join(format!("f-{i}-{round}"));
                std::fs::write(&path, &original).expect("write original");
                let fd = open(&engine, &path, libc::O_WRONLY).await;
                let src = WriteSource::from_vecs(parts);
                assert_eq!(src.parts_len(), count);
                let fut = engine.write_all(fd, src, offset as u64, sync);
                assert_send(&fut);
                let out = fut.await;
                assert_complete(&out, data.len() as u64, &ctx);
                total_written += data.len() as u64;
                engine.close(fd).await.expect("close");
                let got = std::fs::read(&path).expect("read back");
                assert!(
                    got == overlay(&original, offset, &data),
                    "{ctx}: file differs ({} bytes, {} + {} expected)",
                    got.len(),
                    orig_len,
                    data.len()
                );
            }
        }
        let s = engine.stats();
        assert_eq!(s.bytes_written - written_before, total_written, "{s:?}");
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        assert_eq!(open_file_fds(), base_fds, "{choice:?}: descriptors leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_position_writes_follow_the_file_position_and_o_append() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("current_position_writes_follow_the_file_position_and_o_append");
    let dir = tempfile::tempdir().expect("tempdir");
    for choice in choices() {
        let engine = start(choice);
        let base_fds = open_file_fds();

        // A plain descriptor: the writes start at its position and move it.
        let original = random_bytes(&mut rng, 100_000);
        let path = dir.path().join(format!("pos-{choice:?}"));
        std::fs::write(&path, &original).expect("write original");
        let fd = open(&engine, &path, libc::O_WRONLY).await;
        // SAFETY: lseek takes no pointers; fd is open.
        assert_eq!(unsafe { libc::lseek(fd, 12_345, libc::SEEK_SET) }, 12_345);
        let a = random_parts(&mut rng, 2500, 100);
        let b = random_parts(&mut rng, 40, 5000);
        let (a_data, b_data) = (concat(&a), concat(&b));
        let out = engine
            .write_all(
                fd,
                WriteSource::from_vecs(a),
                CURRENT_POSITION,
                SyncMode::None,
            )
            .await;
        assert_complete(&out, a_data.len() as u64, &format!("{choice:?} a"));
        assert_eq!(file_position(fd), 12_345 + a_data.len() as i64);
        let out = engine
            .write_all(
                fd,
                WriteSource::from_vecs(b),
                CURRENT_POSITION,
                SyncMode::Data,
            )
            .await;
        assert_complete(&out, b_data.len() as u64, &format!("{choice:?} b"));
        let end = 12_345 + a_data.len() + b_data.len();
        assert_eq!(file_position(fd), end as i64);
        engine.close(fd).await.expect("close");
        let want = overlay(
            &overlay(&original, 12_345, &a_data),
            end - b_data.len(),
            &b_data,
        );
        assert!(
            std::fs::read(&path).expect("read") == want,
            "{choice:?}: current position"
        );

        // O_APPEND: every batch lands at the end, whatever the offset says
        // (as pwritev(2) does on Linux).
        let path = dir.path().join(format!("append-{choice:?}"));
        let original = random_bytes(&mut rng, 10_000);
        std::fs::write(&path, &original).expect("write original");
        let fd = open(&engine, &path, libc::O_WRONLY | libc::O_APPEND).await;
        let mut want = original.clone();
        for (i, offset) in [CURRENT_POSITION, CURRENT_POSITION, 0]
            .into_iter()
            .enumerate()
        {
            let count = rng.gen_range(1..2200);
            let parts = random_parts(&mut rng, count, 300);
            let data = concat(&parts);
            let out = engine
                .write_all(fd, WriteSource::from_vecs(parts), offset, SyncMode::None)
                .await;
            assert_complete(&out, data.len() as u64, &format!("{choice:?} append {i}"));
            want.extend_from_slice(&data);
        }
        engine.close(fd).await.expect("close");
        assert!(
            std::fs::read(&path).expect("read") == want,
            "{choice:?}: O_APPEND"
        );

        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        assert_eq!(open_file_fds(), base_fds, "{choice:?}: descriptors leaked");
    }
}

/// `count` parts of 1 to 4 bytes, all slices of one buffer the source owns.
fn tiny_parts_of_one_buffer(rng: &mut StdRng, count: usize) -> (WriteSource, Vec<u8>) {
    let lens: Vec<usize> = (0..count).map(|_| rng.gen_range(1..=4)).collect();
    let buf = random_bytes(rng, lens.iter().sum());
    let copy = buf.clone();
    let mut parts = Vec::with_capacity(count);
    let mut at = 0;
    for len in lens {
        // SAFETY: at + len <= buf.len(), so the pointer stays in the buffer.
        parts.push((unsafe { buf.as_ptr().add(at) }, len));
        at += len;
    }
    // SAFETY: every part lies inside `buf`, whose heap block the Box keeps
    // allocated and in place (moving a Vec does not move its contents).
    let src = unsafe { WriteSource::from_parts(Box::new(buf), parts) };
    (src, copy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_submitted_with_one_enter() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("a_batch_is_submitted_with_one_enter");
    let dir = tempfile::tempdir().expect("tempdir");
    for choice in choices() {
        let engine = start(choice);
        let base_fds = open_file_fds();
        let path = dir.path().join(format!("batch-{choice:?}"));
        let fd = open(&engine, &path, libc::O_WRONLY | libc::O_CREAT).await;
        let mut want = Vec::new();
        // (parts, sync, SQEs: writevs plus the sync, enters). 600_000
        // parts are 586 writevs, more than the 512-entry SQ holds, so two
        // chains, one after the other.
        let cases = [
            (3000, SyncMode::Full, 3 + 1, 1),
            (300_000, SyncMode::None, 293, 1),
            (600_000, SyncMode::Data, 586 + 1, 2),
        ];
        for (count, sync, sqes, enters) in cases {
            let (src, data) = tiny_parts_of_one_buffer(&mut rng, count);
            let before = engine.stats();
            let out = engine.write_all(fd, src, want.len() as u64, sync).await;
            let after = engine.stats();
            assert_complete(&out, data.len() as u64, &format!("{choice:?} {count}"));
            want.extend_from_slice(&data);
            let (ops, entered) = (after.ops - before.ops, after.enters - before.enters);
            println!("{choice:?}: {count} parts {sync:?}: {ops} ops, {entered} enters");
            if choice == Choice::IoUring {
                assert_eq!(ops, sqes, "{count} parts: {before:?} -> {after:?}");
                assert_eq!(entered, enters, "{count} parts: {before:?} -> {after:?}");
            } else {
                // The whole batch is one job on the pool.
                assert_eq!(ops, 1);
                assert_eq!(entered, 0);
            }
        }
        engine.close(fd).await.expect("close");
        assert!(std::fs::read(&path).expect("read") == want, "{choice:?}");
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        assert_eq!(open_file_fds(), base_fds, "{choice:?}: descriptors leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writev_is_one_call_of_at_most_iov_max_parts() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("writev_is_one_call_of_at_most_iov_max_parts");
    let dir = tempfile::tempdir().expect("tempdir");
    for choice in choices() {
        let engine = start(choice);
        let base_fds = open_file_fds();
        let path = dir.path().join(format!("writev-{choice:?}"));
        let fd = open(&engine, &path, libc::O_WRONLY | libc::O_CREAT).await;
        let parts = random_parts(&mut rng, 1500, 50);
        // Empty parts take no iovec.
        let first: Vec<u8> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .take(IOV_MAX)
            .flatten()
            .copied()
            .collect();
        let (res, src) = engine.writev(fd, WriteSource::from_vecs(parts), 10).await;
        assert_eq!(res.expect("writev"), first.len(), "{choice:?}");
        assert_eq!(src.parts_len(), 1500);
        let (res, _) = engine.writev(fd, WriteSource::empty(), 0).await;
        assert_eq!(res.expect("empty writev"), 0);
        let (res, _) = engine
            .writev(-1, WriteSource::from_vecs(vec![vec![1]]), 0)
            .await;
        assert_eq!(res.expect_err("fd -1").raw_os_error(), Some(libc::EBADF));
        engine.close(fd).await.expect("close");
        assert!(
            std::fs::read(&path).expect("read") == overlay(&[], 10, &first),
            "{choice:?}"
        );
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        assert_eq!(open_file_fds(), base_fds, "{choice:?}: descriptors leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_and_fdatasync_succeed_and_fail_like_the_syscalls() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("fsync_and_fdatasync_succeed_and_fail_like_the_syscalls");
    let dir = tempfile::tempdir().expect("tempdir");
    for choice in choices() {
        let engine = start(choice);
        let base_fds = open_file_fds();
        let path = dir.path().join(format!("sync-{choice:?}"));
        let fd = open(&engine, &path, libc::O_RDWR | libc::O_CREAT).await;
        let mut want = Vec::new();
        for sync in [SyncMode::Data, SyncMode::Full, SyncMode::None] {
            let parts = random_parts(&mut rng, 1100, 200);
            let data = concat(&parts);
            let out = engine
                .write_all(fd, WriteSource::from_vecs(parts), want.len() as u64, sync)
                .await;
            assert_complete(&out, data.len() as u64, &format!("{choice:?} {sync:?}"));
            want.extend_from_slice(&data);
        }
        engine.fsync(fd, false).await.expect("fsync");
        engine.fsync(fd, true).await.expect("fdatasync");
        // Nothing to write: only the sync runs.
        for sync in [SyncMode::Full, SyncMode::Data, SyncMode::None] {
            let out = engine.write_all(fd, WriteSource::empty(), 0, sync).await;
            assert_complete(&out, 0, &format!("{choice:?} empty {sync:?}"));
        }
        engine.close(fd).await.expect("close");
        assert!(std::fs::read(&path).expect("read") == want, "{choice:?}");

        // A read-only descriptor may be synced.
        let fd = open(&engine, &path, libc::O_RDONLY).await;
        engine.fsync(fd, false).await.expect("fsync read-only");
        engine.close(fd).await.expect("close");

        // Errors are the system calls' own.
        let err = engine.fsync(-1, false).await.expect_err("fd -1");
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{choice:?}");
        let mut pipe = [0; 2];
        // SAFETY: pipe writes two descriptors into the local array.
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        let err = engine.fsync(pipe[1], true).await.expect_err("pipe");
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{choice:?}");
        // A write to the pipe succeeds, its sync does not: all written,
        // and the error says why the sync failed.
        let out = engine
            .write_all(
                pipe[1],
                WriteSource::from_vecs(vec![vec![1; 100], vec![2; 50]]),
                CURRENT_POSITION,
                SyncMode::Full,
            )
            .await;
        assert_eq!(out.written, 150, "{choice:?}");
        assert_eq!(errno(&out), Some(libc::EINVAL), "{choice:?}");
        for p in pipe {
            // SAFETY: both ends were opened above and are closed once.
            unsafe { libc::close(p) };
        }

        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        assert_eq!(open_file_fds(), base_fds, "{choice:?}: descriptors leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ebadf_for_invalid_closed_and_read_only_descriptors() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("ebadf_for_invalid_closed_and_read_only_descriptors");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    std::fs::write(&path, b"unchanged").expect("write");
    for choice in choices() {
        let engine = start(choice);
        let base_fds = open_file_fds();
        // A closed descriptor whose number nothing reuses: the highest the
        // limit allows (new descriptors take the lowest free number). A low
        // one could be taken at once by a runtime the harness builds for
        // another test, and the writes would land in its eventfd.
        let closed = {
            let fd = open(&engine, &path, libc::O_WRONLY).await;
            // SAFETY: getrlimit writes into a local struct.
            let high = unsafe {
                let mut lim: libc::rlimit = std::mem::zeroed();
                assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
                (lim.rlim_cur.min(1 << 20) - 1) as RawFd
            };
            // SAFETY: dup2 takes no pointers; fd is open, `high` is free.
            assert_eq!(unsafe { libc::dup2(fd, high) }, high);
            engine.close(fd).await.expect("close");
            engine.close(high).await.expect("close");
            high
        };
        let read_only = open(&engine, &path, libc::O_RDONLY).await;
        for (fd, what) in [(-1, "-1"), (closed, "closed"), (read_only, "read-only")] {
            for sync in [SyncMode::None, SyncMode::Full] {
                let parts = random_parts(&mut rng, 2100, 100);
                let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
                let out = engine
                    .write_all(fd, WriteSource::from_vecs(parts), 0, sync)
                    .await;
                let ctx = format!("{choice:?} {what} {sync:?}");
                assert_eq!(out.written, 0, "{ctx}");
                assert_eq!(errno(&out), Some(libc::EBADF), "{ctx}: {:?}", out.error);
                assert_eq!(out.source.len(), len, "{ctx}: source handed back");
            }
        }
        engine.close(read_only).await.expect("close");
        assert_eq!(std::fs::read(&path).expect("read"), b"unchanged");
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        assert_eq!(open_file_fds(), base_fds, "{choice:?}: descriptors leaked");
    }
}

/// `count` slices of `buf` (up to `max_len` bytes, about one in ten empty),
/// back to back from a random start, in a source that holds a reference.
fn slices_of(buf: &Arc<Vec<u8>>, rng: &mut StdRng, count: usize, max_len: usize) -> WriteSource {
    let mut at = rng.gen_range(0..buf.len());
    let mut parts = Vec::with_capacity(count);
    for _ in 0..count {
        let len = if rng.gen_ratio(1, 10) {
            0
        } else {
            rng.gen_range(1..=max_len)
        };
        if at + len > buf.len() {
            at = 0;
        }
        // SAFETY: at + len <= buf.len(): the slice lies inside the buffer.
        parts.push((unsafe { buf.as_ptr().add(at) }, len));
        at += len;
    }
    // SAFETY: the parts lie inside `buf`'s heap block, which the Arc clone
    // in the owner keeps allocated and unmoved (and nobody mutates).
    unsafe { WriteSource::from_parts(Box::new(buf.clone()), parts) }
}

/// Polls `fut` once (so its requests are submitted) and hands it back.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_write_all_mid_flight_leaves_nothing_pending() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("dropping_write_all_mid_flight_leaves_nothing_pending");
    let dir = tempfile::tempdir().expect("tempdir");
    for choice in choices() {
        let engine = start(choice);
        let base_fds = open_file_fds();
        let path = dir.path().join(format!("drop-{choice:?}"));
        let fd = open(&engine, &path, libc::O_WRONLY | libc::O_CREAT).await;
        // Every source borrows slices of one buffer and holds a reference
        // to it, so the count shows when the last source has been freed.
        let buf = Arc::new(random_bytes(&mut rng, 3 << 20));
        for i in 0..20u64 {
            let src = slices_of(&buf, &mut rng, 3000, 2000);
            let mut fut = Box::pin(engine.write_all(fd, src, i << 22, SyncMode::Data));
            // Submitted, then abandoned: the requests in the kernel keep the
            // source alive until they complete.
            let _ = poll_once(&mut fut).await;
            drop(fut);
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        let freed = eventually(Duration::from_secs(5), || Arc::strong_count(&buf) == 1).await;
        assert!(
            freed,
            "{choice:?}: {} sources alive",
            Arc::strong_count(&buf) - 1
        );
        // SAFETY: fd was opened above and is closed once, here, after
        // shutdown (nothing writes to it any more).
        assert_eq!(unsafe { libc::close(fd) }, 0);
        let back = eventually(Duration::from_secs(5), || open_file_fds() == base_fds).await;
        assert!(back, "{choice:?}: descriptors leaked");
        println!("{choice:?}: {:?}", engine.stats());
    }
}

/// Sums the lengths of the first `n` non-empty parts: one full writev.
fn first_writev_len(parts: &[Vec<u8>]) -> usize {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .take(IOV_MAX)
        .map(Vec::len)
        .sum()
}

#[test]
fn short_write_at_rlimit_fsize_is_continued_and_reported() {
    if !cfg!(target_os = "linux") {
        println!("skipped: RLIMIT_FSIZE short writes are checked on Linux only");
        return;
    }
    // Spawning opens /dev/null for the child's stdin: not behind the back
    // of a test counting descriptors.
    let _gate = FD_GATE.blocking_write();
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args([
            "--exact",
            "child_under_rlimit_fsize",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("spawn the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("child ok: rlimit fsize"),
        "child did not run:\n{stdout}\n{stderr}"
    );
}

/// Runs in the child only: the file size limit and SIGXFSZ ignored (the
/// default action would kill the process when a write crosses the limit,
/// on whichever thread, io_uring's workers included, does it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_under_rlimit_fsize() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    const LIMIT: usize = 1_500_007;
    // SAFETY: SIG_IGN is a valid disposition; setrlimit reads a local struct.
    unsafe {
        assert_ne!(libc::signal(libc::SIGXFSZ, libc::SIG_IGN), libc::SIG_ERR);
        let mut lim: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = LIMIT as libc::rlim_t;
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let mut rng = rng("child_under_rlimit_fsize");
    let dir = tempfile::tempdir().expect("tempdir");
    for choice in choices() {
        let engine = start(choice);
        // About 1 KiB a part: three linked writevs of ~1 MiB each, the
        // limit inside the second. Then an offset putting the limit exactly
        // at the end of the first writev, one inside the first, and one at
        // or past the limit (nothing can be written).
        let parts = random_parts(&mut rng, 3000, 2000);
        let data = concat(&parts);
        let boundary = LIMIT - first_writev_len(&parts);
        let offsets = [
            0,
            boundary,
            rng.gen_range(boundary + 1..LIMIT),
            LIMIT,
            LIMIT + 10,
        ];
        for (i, offset) in offsets.into_iter().enumerate() {
            for sync in [SyncMode::None, SyncMode::Full] {
                let ctx = format!("{choice:?} offset {offset} {sync:?}");
                let path = dir.path().join(format!("limit-{choice:?}-{i}-{sync:?}"));
                let fd = open(&engine, &path, libc::O_WRONLY | libc::O_CREAT).await;
                let before = engine.stats().bytes_written;
                let out = engine
                    .write_all(
                        fd,
                        WriteSource::from_vecs(parts.clone()),
                        offset as u64,
                        sync,
                    )
                    .await;
                let want = LIMIT.saturating_sub(offset);
                assert_eq!(out.written, want as u64, "{ctx}: {:?}", out.error);
                assert_eq!(errno(&out), Some(libc::EFBIG), "{ctx}: {:?}", out.error);
                assert_eq!(out.source.len(), data.len() as u64, "{ctx}");
                assert_eq!(engine.stats().bytes_written - before, want as u64, "{ctx}");
                engine.close(fd).await.expect("close");
                let got = std::fs::read(&path).expect("read");
                if want > 0 {
                    assert_eq!(got.len(), LIMIT, "{ctx}: file size");
                    assert!(got == overlay(&[], offset, &data[..want]), "{ctx}: content");
                } else {
                    assert!(got.is_empty(), "{ctx}: {} bytes in the file", got.len());
                }
            }
        }

        // At the current position: of an O_APPEND descriptor, and of a
        // plain one moved to 10_000. The writes continue after the short
        // one from where it stopped, and the position ends where write(2)
        // would leave it, at the limit.
        for append in [true, false] {
            let ctx = format!("{choice:?} current position, append {append}");
            let path = dir.path().join(format!("limit-cur-{choice:?}-{append}"));
            let original = random_bytes(&mut rng, 10_000);
            std::fs::write(&path, &original).expect("write");
            let flags = if append { libc::O_APPEND } else { 0 };
            let fd = open(&engine, &path, libc::O_WRONLY | flags).await;
            if !append {
                // SAFETY: lseek takes no pointers; fd is open.
                assert_eq!(unsafe { libc::lseek(fd, 10_000, libc::SEEK_SET) }, 10_000);
            }
            let src = WriteSource::from_vecs(parts.clone());
            let out = engine
                .write_all(fd, src, CURRENT_POSITION, SyncMode::None)
                .await;
            let want = LIMIT - original.len();
            assert_eq!(out.written, want as u64, "{ctx}: {:?}", out.error);
            assert_eq!(errno(&out), Some(libc::EFBIG), "{ctx}");
            assert_eq!(file_position(fd), LIMIT as i64, "{ctx}: file position");
            engine.close(fd).await.expect("close");
            let mut expect = original.clone();
            expect.extend_from_slice(&data[..want]);
            assert!(std::fs::read(&path).expect("read") == expect, "{ctx}");
        }

        // One writev that crosses the limit is short, and moves the
        // position by what it wrote.
        let path = dir.path().join(format!("limit-writev-{choice:?}"));
        let fd = open(&engine, &path, libc::O_WRONLY | libc::O_CREAT).await;
        let start = LIMIT - 1000;
        // SAFETY: lseek takes no pointers; fd is open.
        let at = unsafe { libc::lseek(fd, start as i64, libc::SEEK_SET) };
        assert_eq!(at, start as i64);
        let (res, _) = engine
            .writev(
                fd,
                WriteSource::from_vecs(vec![vec![7; 600], vec![8; 600]]),
                CURRENT_POSITION,
            )
            .await;
        assert_eq!(res.expect("short writev"), 1000, "{choice:?}");
        assert_eq!(
            file_position(fd),
            LIMIT as i64,
            "{choice:?}: writev position"
        );
        let (res, _) = engine
            .writev(
                fd,
                WriteSource::from_vecs(vec![vec![9; 10]]),
                CURRENT_POSITION,
            )
            .await;
        assert_eq!(
            res.expect_err("at the limit").raw_os_error(),
            Some(libc::EFBIG)
        );
        assert_eq!(
            file_position(fd),
            LIMIT as i64,
            "{choice:?}: writev position"
        );
        engine.close(fd).await.expect("close");

        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
    println!("child ok: rlimit fsize");
}

/// A tmpfs mounted for one test, unmounted when dropped.
#[cfg(target_os = "linux")]
struct SmallTmpfs {
    dir: tempfile::TempDir,
}

#[cfg(target_os = "linux")]
impl SmallTmpfs {
    fn mount(size: &str) -> Result<SmallTmpfs, String> {
        // SAFETY: geteuid takes no arguments.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root".into());
        }
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let target = cpath(dir.path());
        let opts = CString::new(format!("size={size}")).expect("options");
        // SAFETY: every pointer is a NUL-terminated string that outlives
        // the call.
        let r = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        if r != 0 {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(SmallTmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[cfg(target_os = "linux")]
impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let target = cpath(self.dir.path());
        // SAFETY: target is a NUL-terminated path that outlives the call.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enospc_reports_exactly_what_reached_the_disk() {
    let _gate = FD_GATE.write().await;
    let fs = match SmallTmpfs::mount("1m") {
        Ok(fs) => fs,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let mut rng = rng("enospc_reports_exactly_what_reached_the_disk");
    for choice in choices() {
        let engine = start(choice);
        let base_fds = open_file_fds();
        // (offset, bytes already in the file, O_APPEND). At the current
        // position the descriptor is first moved to 1000 (plain) or is at
        // the end (O_APPEND): either way the writes start at `existing`.
        let cases = [
            (0, 0, false),
            (4097, 0, false),
            (CURRENT_POSITION, 1000, false),
            (CURRENT_POSITION, 5000, true),
        ];
        for (i, (offset, existing, append)) in cases.into_iter().enumerate() {
            let ctx = format!("{choice:?} offset {offset} existing {existing} append {append}");
            let path = fs.path().join(format!("fill-{i}"));
            let original = random_bytes(&mut rng, existing);
            std::fs::write(&path, &original).expect("write original");
            let flags = if append { libc::O_APPEND } else { 0 };
            let fd = open(&engine, &path, libc::O_RDWR | flags).await;
            if offset == CURRENT_POSITION && !append {
                // SAFETY: lseek takes no pointers; fd is open.
                let at = unsafe { libc::lseek(fd, existing as i64, libc::SEEK_SET) };
                assert_eq!(at, existing as i64);
            }
            // ~3 MiB into 1 MiB: the writes run out of space part-way.
            let parts = random_parts(&mut rng, 3000, 2000);
            let data = concat(&parts);
            let out = engine
                .write_all(fd, WriteSource::from_vecs(parts), offset, SyncMode::Data)
                .await;
            assert_eq!(errno(&out), Some(libc::ENOSPC), "{ctx}: {:?}", out.error);
            let size = engine.fstat(fd).await.expect("fstat").size;
            let start = if offset == CURRENT_POSITION {
                existing as u64
            } else {
                offset
            };
            assert!(out.written > 0, "{ctx}: nothing written");
            assert_eq!(start + out.written, size, "{ctx}: written vs size on disk");
            if offset == CURRENT_POSITION {
                // Where write(2) would leave it: after the bytes written.
                assert_eq!(file_position(fd), size as i64, "{ctx}: file position");
            }
            // The next write, after the end, finds no room at all.
            let next = if offset == CURRENT_POSITION {
                CURRENT_POSITION
            } else {
                size
            };
            let out2 = engine
                .write_all(
                    fd,
                    WriteSource::from_vecs(vec![vec![9; 8192]]),
                    next,
                    SyncMode::None,
                )
                .await;
            assert_eq!(errno(&out2), Some(libc::ENOSPC), "{ctx}: {:?}", out2.error);
            assert_eq!(out2.written, 0, "{ctx}: into a full filesystem");
            engine.close(fd).await.expect("close");
            let got = std::fs::read(&path).expect("read");
            let want = overlay(&original, start as usize, &data[..out.written as usize]);
            assert!(got == want, "{ctx}: content");
            std::fs::remove_file(&path).expect("remove");
            println!("{ctx}: {} of {} bytes fit", out.written, data.len());
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        assert_eq!(open_file_fds(), base_fds, "{choice:?}: descriptors leaked");
    }
}
