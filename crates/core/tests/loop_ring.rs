//! `LoopRing`: the batch writer and small-file reads on a ring the calling
//! thread submits and reaps itself (what write streams and readFile use on
//! Node's JavaScript thread). The thread here waits on the ring's eventfd
//! with poll(2), as libuv does.
//!
//! Random part sizes come from a seeded RNG; the seed is printed (run with
//! `--nocapture`) and `URING_FS_TEST_SEED=<n>` replays a run.
#![cfg(all(target_os = "linux", feature = "io-uring"))]
// Test helpers may unwrap and expect: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{rng, start};

use std::collections::HashMap;
use std::io::{Seek, SeekFrom};
use std::os::fd::AsRawFd;

use rand::Rng;
use uring_fs_core::{Choice, SyncMode, WriteOutcome, WriteSource, CURRENT_POSITION};
use uring_fs_core::{LoopDone as Done, LoopRing};

/// The write outcomes of `done` (panics on a read).
fn writes(done: HashMap<usize, Done>) -> HashMap<usize, WriteOutcome> {
    done.into_iter()
        .map(|(id, d)| match d {
            Done::Write(o) => (id, o),
            Done::Read(_) => panic!("a read among the writes"),
        })
        .collect()
}

/// Waits for the eventfd, reaps, until every job in `want` has finished.
fn wait_all(ring: &mut LoopRing, want: usize) -> HashMap<usize, Done> {
    let mut done = HashMap::new();
    while done.len() < want {
        let mut pfd = libc::pollfd {
            fd: ring.eventfd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the length given.
        let n = unsafe { libc::poll(&mut pfd, 1, 10_000) };
        assert!(
            n > 0,
            "no completion within 10 s ({} of {want} done)",
            done.len()
        );
        for (id, outcome) in ring.reap() {
            assert!(
                done.insert(id, outcome).is_none(),
                "job {id} finished twice"
            );
        }
    }
    assert_eq!(ring.active(), 0);
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn jobs_write_every_byte_at_their_offsets() {
    let engine = start(Choice::IoUring);
    let mut ring = engine.loop_ring().expect("loop ring");
    let mut rng = rng("jobs_write_every_byte_at_their_offsets");
    let dir = tempfile::tempdir().expect("tempdir");
    // Several files at once, each written by a few jobs at explicit offsets
    // (some with a sync), plus an empty job.
    let mut expected: Vec<(std::fs::File, Vec<u8>)> = Vec::new();
    let mut jobs = 0;
    for f in 0..8 {
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join(format!("f{f}")))
            .expect("open");
        let mut content = Vec::new();
        for j in 0..4 {
            let parts: Vec<Vec<u8>> = (0..rng.gen_range(1..300))
                .map(|_| (0..rng.gen_range(0..5000)).map(|_| rng.gen()).collect())
                .collect();
            let at = content.len() as u64;
            content.extend(parts.iter().flatten());
            let sync = if j == 3 {
                SyncMode::Data
            } else {
                SyncMode::None
            };
            let id = ring.write(file.as_raw_fd(), WriteSource::from_vecs(parts), at, sync);
            assert!(id.is_ok(), "ring full with {jobs} jobs");
            jobs += 1;
        }
        expected.push((file, content));
    }
    let empty = ring.write(
        expected[0].0.as_raw_fd(),
        WriteSource::from_vecs(Vec::new()),
        0,
        SyncMode::None,
    );
    assert!(empty.is_ok());
    let done = writes(wait_all(&mut ring, jobs + 1));
    for outcome in done.values() {
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
    }
    for (file, content) in &expected {
        let got = std::fs::read(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("read back");
        assert!(got == *content, "file differs");
    }
    let s = engine.stats();
    assert!(s.bytes_written >= expected.iter().map(|(_, c)| c.len() as u64).sum::<u64>());
    drop(ring);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn at_the_current_position_the_position_moves_as_write_would() {
    let engine = start(Choice::IoUring);
    let mut ring = engine.loop_ring().expect("loop ring");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pos");
    std::fs::write(&path, b"0123456789").expect("write");
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open");
    file.seek(SeekFrom::Start(2)).expect("seek");
    let src = WriteSource::from_vecs(vec![b"ab".to_vec(), b"cd".to_vec()]);
    ring.write(file.as_raw_fd(), src, CURRENT_POSITION, SyncMode::None)
        .map_err(|_| ())
        .expect("queued");
    let done = writes(wait_all(&mut ring, 1));
    assert_eq!(done.values().next().map(|o| o.written), Some(4));
    assert_eq!(file.stream_position().expect("position"), 6);
    assert_eq!(std::fs::read(&path).expect("read"), b"01abcd6789");
    drop(ring);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_failed_write_reports_its_error_and_what_was_written() {
    let engine = start(Choice::IoUring);
    let mut ring = engine.loop_ring().expect("loop ring");
    let dir = tempfile::tempdir().expect("tempdir");
    // Read-only descriptor: the first write fails with EBADF.
    let path = dir.path().join("ro");
    std::fs::write(&path, b"x").expect("write");
    let file = std::fs::File::open(&path).expect("open");
    let src = WriteSource::from_vecs(vec![vec![1u8; 100]]);
    ring.write(file.as_raw_fd(), src, 0, SyncMode::None)
        .map_err(|_| ())
        .expect("queued");
    let done = writes(wait_all(&mut ring, 1));
    let outcome = done.values().next().expect("one");
    assert_eq!(outcome.written, 0);
    assert_eq!(
        outcome.error.as_ref().and_then(|e| e.raw_os_error()),
        Some(libc::EBADF)
    );
    // A ring dropped with a job still in the kernel waits for it.
    let big = WriteSource::from_vecs(vec![vec![7u8; 8 << 20]]);
    let out = std::fs::File::create(dir.path().join("big")).expect("create");
    ring.write(out.as_raw_fd(), big, 0, SyncMode::Full)
        .map_err(|_| ())
        .expect("queued");
    drop(ring);
    assert_eq!(
        std::fs::metadata(dir.path().join("big"))
            .expect("stat")
            .len(),
        8 << 20
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn small_reads_read_regular_files_and_leave_the_rest_alone() {
    let engine = start(Choice::IoUring);
    let mut ring = engine.loop_ring().expect("loop ring");
    let dir = tempfile::tempdir().expect("tempdir");
    let cpath = |p: &std::path::Path| {
        std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("no NUL")
    };
    let small = dir.path().join("small");
    std::fs::write(&small, b"hello").expect("write");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").expect("write");
    let large = dir.path().join("large");
    std::fs::write(&large, vec![1u8; 100_000]).expect("write");
    let huge = dir.path().join("huge");
    std::fs::write(&huge, vec![2u8; (8 << 20) + 1]).expect("write");
    let fifo = dir.path().join("fifo");
    let c = cpath(&fifo);
    // SAFETY: c is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // What each must give: Some(bytes), or None for the general path (over
    // 8 MiB, not a regular file, failing, or a size that says 0 with
    // content). The FIFO (no writer) must not be opened, or this would hang.
    let cases: Vec<(std::path::PathBuf, Option<Vec<u8>>)> = vec![
        (small, Some(b"hello".to_vec())),
        (empty, Some(Vec::new())),
        (large, Some(vec![1u8; 100_000])),
        (huge, None),
        (fifo, None),
        (dir.path().to_path_buf(), None),
        (dir.path().join("missing"), None),
        ("/proc/self/status".into(), None),
    ];
    let mut ids = HashMap::new();
    for (p, want) in &cases {
        let id = ring
            .read_small(cpath(p), libc::O_RDONLY)
            .map_err(|_| ())
            .expect("queued");
        ids.insert(id, (p.clone(), want.clone()));
    }
    let done = wait_all(&mut ring, cases.len());
    for (id, d) in done {
        let (p, want) = &ids[&id];
        match d {
            Done::Read(Ok(got)) => {
                let got = got.map(|b| b.to_vec());
                assert!(
                    got == *want,
                    "{}: {:?} bytes, want {:?}",
                    p.display(),
                    got.map(|g| g.len()),
                    want.as_ref().map(Vec::len)
                );
            }
            Done::Read(Err(e)) => panic!("{}: {:?}", p.display(), e.error),
            Done::Write(_) => panic!("a write among the reads"),
        }
    }
    drop(ring);
    engine.shutdown().await;
}

/// A ring dropped with a write that can never complete (into a full pipe
/// that nobody reads) does not wait forever: after a moment it cancels the
/// write, and frees the write's memory only once the kernel has returned
/// it. (The ring is dropped when a worker thread's environment goes away;
/// waiting forever there hangs the worker, and the process joining it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_ring_dropped_with_a_write_that_never_completes_cancels_it() {
    let engine = start(Choice::IoUring);
    let mut ring = engine.loop_ring().expect("loop ring");
    let mut fds = [0; 2];
    // SAFETY: fds is an array of two ints, as pipe(2) wants.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (rd, wr) = (fds[0], fds[1]);
    // Fill the pipe (non-blocking), then make the write end blocking again.
    // SAFETY: fcntl and write take the descriptors and a local buffer.
    unsafe {
        libc::fcntl(wr, libc::F_SETFL, libc::O_NONBLOCK);
        let block = [0u8; 4096];
        while libc::write(wr, block.as_ptr().cast(), block.len()) > 0 {}
        libc::fcntl(wr, libc::F_SETFL, 0);
    }
    let data = std::sync::Arc::new(vec![5u8; 1 << 16]);
    let parts = vec![(data.as_ptr(), data.len())];
    // SAFETY: the part is the Vec's heap block, kept alive (and never
    // moved) by the Arc clone the source owns.
    let src = unsafe { WriteSource::from_parts(Box::new(data.clone()), parts) };
    ring.write(wr, src, CURRENT_POSITION, SyncMode::None)
        .map_err(|_| ())
        .expect("queued");
    let started = std::time::Instant::now();
    drop(ring);
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(8),
        "drop took {took:?}"
    );
    // The write's memory was let go with the job, after its CQE.
    assert_eq!(std::sync::Arc::strong_count(&data), 1);
    // SAFETY: both ends are ours, closed once.
    unsafe {
        libc::close(rd);
        libc::close(wr);
    }
    engine.shutdown().await;
}
