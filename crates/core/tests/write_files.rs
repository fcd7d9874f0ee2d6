//! `write_files`: many whole files in one call, each test run on every
//! backend this build has (io_uring and the thread-pool fallback).
//!
//! Sizes, failure positions and concurrency come from a seeded RNG; the seed
//! is printed (run with `--nocapture`) and `URING_FS_TEST_SEED=<n>` replays
//! a run. Every test takes `FD_GATE` exclusively, so the descriptor counts
//! they check see no other test's files.

// Test helpers may unwrap and expect: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{assert_nothing_pending, choices, cpath, open_file_fds, random_bytes, rng, start};

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rand::rngs::StdRng;
use rand::Rng;
use tokio::sync::RwLock;
use uring_fs_core::batch::write_files::write_files;
use uring_fs_core::{Backend, OpError, Syscall, WriteSource};

static FD_GATE: RwLock<()> = RwLock::const_new(());

const W: i32 = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
const WX: i32 = W | libc::O_EXCL;
const A: i32 = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND;

/// A size from 0 to 1 MiB, often on a page or power-of-two boundary.
fn random_size(rng: &mut StdRng) -> usize {
    const EDGES: [usize; 9] = [0, 1, 4095, 4096, 4097, 65535, 65536, 65537, 1 << 20];
    match rng.gen_range(0..10) {
        0 => EDGES[rng.gen_range(0..EDGES.len())],
        1..=3 => rng.gen_range(0..=1 << 20),
        _ => rng.gen_range(0..20_000),
    }
}

/// `data` as a source of one to a few parts (some empty), as JS hands over
/// one Buffer per file and Rust callers may hand over several.
fn source_of(rng: &mut StdRng, data: &[u8]) -> WriteSource {
    let pieces = rng.gen_range(1..=4);
    let mut cuts: Vec<usize> = (1..pieces).map(|_| rng.gen_range(0..=data.len())).collect();
    cuts.push(0);
    cuts.push(data.len());
    cuts.sort_unstable();
    let parts = cuts.windows(2).map(|w| data[w[0]..w[1]].to_vec()).collect();
    WriteSource::from_vecs(parts)
}

/// Random bytes to cut file contents from: generating every file's bytes
/// afresh costs more (in a debug build) than writing them.
struct Pool(Vec<u8>);

impl Pool {
    fn new(rng: &mut StdRng) -> Pool {
        Pool(random_bytes(rng, 2 << 20))
    }

    /// `size` (at most 1 MiB) random bytes from a random place in the pool.
    fn bytes(&self, rng: &mut StdRng, size: usize) -> Vec<u8> {
        let at = rng.gen_range(0..=self.0.len() - size);
        self.0[at..at + size].to_vec()
    }
}

fn errno(res: &Result<(), OpError>) -> Option<(Syscall, i32)> {
    res.as_ref()
        .err()
        .map(|e| (e.syscall, e.error.raw_os_error().unwrap_or(0)))
}

fn random_concurrency(rng: &mut StdRng) -> usize {
    [0, 1, 3, 64, 256][rng.gen_range(0..5)]
}

/// The process's umask, as the kernel applies it to `open`'s mode.
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("Umask line");
    u32::from_str_radix(line.trim(), 8).expect("octal umask")
}

fn entries_of(rng: &mut StdRng, files: &[(CString, Vec<u8>)]) -> Vec<(CString, WriteSource)> {
    files
        .iter()
        .map(|(p, d)| (p.clone(), source_of(rng, d)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_random_files_equal_their_data() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("hundreds_of_random_files_equal_their_data");
    let pool = Pool::new(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    for choice in choices() {
        let engine = start(choice);
        let base_fds = open_file_fds();
        for round in 0..2 {
            let files: Vec<(CString, Vec<u8>)> = (0..400)
                .map(|i| {
                    let path = dir.path().join(format!("{choice:?}-{round}-{i}"));
                    // Some files exist and are longer: 'w' must truncate them.
                    if rng.gen_ratio(1, 5) {
                        std::fs::write(&path, vec![0xEE; 1 << 20 | 7]).expect("old content");
                    }
                    let size = random_size(&mut rng);
                    (cpath(&path), pool.bytes(&mut rng, size))
                })
                .collect();
            let concurrency = random_concurrency(&mut rng);
            let ctx = format!("{choice:?} round {round} concurrency {concurrency}");
            let before = engine.stats();
            let entries = entries_of(&mut rng, &files);
            let res = write_files(&engine, entries, W, 0o644, false, concurrency).await;
            let after = engine.stats();
            assert_eq!(res.len(), files.len(), "{ctx}");
            let mut total = 0u64;
            for ((path, data), r) in files.iter().zip(&res) {
                assert!(r.is_ok(), "{ctx}: {path:?}: {r:?}");
                let got = std::fs::read(path.to_str().expect("utf-8 path")).expect("read back");
                assert!(
                    got == *data,
                    "{ctx}: {path:?} differs ({} bytes, {} expected)",
                    got.len(),
                    data.len()
                );
                total += data.len() as u64;
            }
            assert_eq!(after.bytes_written - before.bytes_written, total, "{ctx}");
            if engine.backend() == Backend::IoUring && concurrency >= 64 {
                // Many files' SQEs share each submission (how many depends
                // on how the opens, which the kernel punts to its workers,
                // complete; one file at a time would be one enter per SQE).
                let (ops, enters) = (after.ops - before.ops, after.enters - before.enters);
                assert!(ops > 2 * enters, "{ctx}: {ops} ops in {enters} enters");
            }
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        assert_eq!(open_file_fds(), base_fds, "{choice:?}: descriptors leaked");
    }
}

/// What a file in the mixed test is, and what writing it must give.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Good,
    /// Its directory does not exist: open fails with ENOENT.
    MissingDir,
    /// A directory: open fails with EISDIR.
    Dir,
    /// Under a regular file: open fails with ENOTDIR.
    UnderFile,
    /// /dev/full: open succeeds, a non-empty write fails with ENOSPC.
    DevFull,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_failures_fail_only_their_own_files() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("mixed_failures_fail_only_their_own_files");
    let pool = Pool::new(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("plain");
    std::fs::write(&plain, b"a regular file").expect("plain file");
    for choice in choices() {
        let engine = start(choice);
        let base_fds = open_file_fds();
        let mut cases: Vec<(Kind, CString, Vec<u8>)> = Vec::new();
        for i in 0..300 {
            let kind = match rng.gen_range(0..12) {
                0 => Kind::MissingDir,
                1 => Kind::Dir,
                2 => Kind::UnderFile,
                3 => Kind::DevFull,
                _ => Kind::Good,
            };
            let path = match kind {
                Kind::Good => dir.path().join(format!("{choice:?}-ok-{i}")),
                Kind::MissingDir => dir.path().join(format!("no-such-dir-{i}/f")),
                Kind::Dir => {
                    let d = dir.path().join(format!("{choice:?}-dir-{i}"));
                    std::fs::create_dir(&d).expect("mkdir");
                    d
                }
                Kind::UnderFile => plain.join(format!("f-{i}")),
                Kind::DevFull => Path::new("/dev/full").to_path_buf(),
            };
            let size = random_size(&mut rng);
            cases.push((kind, cpath(&path), pool.bytes(&mut rng, size)));
        }
        let files: Vec<(CString, Vec<u8>)> = cases
            .iter()
            .map(|(_, p, d)| (p.clone(), d.clone()))
            .collect();
        let concurrency = random_concurrency(&mut rng);
        let entries = entries_of(&mut rng, &files);
        let res = write_files(&engine, entries, W, 0o644, false, concurrency).await;
        assert_eq!(res.len(), cases.len());
        for ((kind, path, data), r) in cases.iter().zip(&res) {
            let ctx = format!("{choice:?} {path:?} ({kind:?}, {} bytes)", data.len());
            let want = match kind {
                Kind::Good => None,
                Kind::MissingDir => Some((Syscall::Open, libc::ENOENT)),
                Kind::Dir => Some((Syscall::Open, libc::EISDIR)),
                Kind::UnderFile => Some((Syscall::Open, libc::ENOTDIR)),
                // Writing nothing to /dev/full is no write at all.
                Kind::DevFull if data.is_empty() => None,
                Kind::DevFull => Some((Syscall::Write, libc::ENOSPC)),
            };
            assert_eq!(errno(r), want, "{ctx}: {r:?}");
            if let Kind::Good = kind {
                let got = std::fs::read(path.to_str().expect("utf-8")).expect("read back");
                assert!(got == *data, "{ctx}: content differs");
            }
        }
        assert_eq!(
            std::fs::read(&plain).expect("plain"),
            b"a regular file",
            "a failed open under a file leaves the file alone"
        );

        // 'wx': the files just written exist (EEXIST, untouched), new ones
        // are created.
        let mut excl: Vec<(Option<Vec<u8>>, CString, Vec<u8>)> = Vec::new();
        for (i, (kind, path, data)) in cases.iter().enumerate() {
            if let Kind::Good = kind {
                if rng.gen_bool(0.5) {
                    excl.push((Some(data.clone()), path.clone(), b"not written".to_vec()));
                    continue;
                }
            }
            if rng.gen_ratio(1, 3) {
                let path = dir.path().join(format!("{choice:?}-new-{i}"));
                let size = random_size(&mut rng);
                excl.push((None, cpath(&path), pool.bytes(&mut rng, size)));
            }
        }
        let files: Vec<(CString, Vec<u8>)> = excl
            .iter()
            .map(|(_, p, d)| (p.clone(), d.clone()))
            .collect();
        let entries = entries_of(&mut rng, &files);
        let res = write_files(&engine, entries, WX, 0o644, false, concurrency).await;
        for ((old, path, data), r) in excl.iter().zip(&res) {
            let got = std::fs::read(path.to_str().expect("utf-8")).expect("read back");
            match old {
                Some(old) => {
                    assert_eq!(errno(r), Some((Syscall::Open, libc::EEXIST)), "{path:?}");
                    assert!(got == *old, "{choice:?} {path:?}: 'wx' changed a file");
                }
                None => {
                    assert!(r.is_ok(), "{choice:?} {path:?}: {r:?}");
                    assert!(got == *data, "{choice:?} {path:?}: content differs");
                }
            }
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        assert_eq!(open_file_fds(), base_fds, "{choice:?}: descriptors leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_fsyncs_every_file_before_its_close() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("flush_fsyncs_every_file_before_its_close");
    let pool = Pool::new(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    for choice in choices() {
        let engine = start(choice);
        let base_fds = open_file_fds();
        let files: Vec<(CString, Vec<u8>)> = (0..200)
            .map(|i| {
                let path = dir.path().join(format!("{choice:?}-{i}"));
                let size = random_size(&mut rng);
                (cpath(&path), pool.bytes(&mut rng, size))
            })
            .collect();
        // The same files with and without flush: on io_uring the difference
        // is exactly one fsync SQE per file (the fallback runs a file's
        // writes and its sync as one job).
        let mut ops = Vec::new();
        for flush in [false, true] {
            let before = engine.stats().ops;
            let entries = entries_of(&mut rng, &files);
            let res = write_files(&engine, entries, W, 0o644, flush, 64).await;
            ops.push(engine.stats().ops - before);
            for ((path, data), r) in files.iter().zip(&res) {
                assert!(r.is_ok(), "{choice:?} flush {flush} {path:?}: {r:?}");
                let got = std::fs::read(path.to_str().expect("utf-8")).expect("read back");
                assert!(got == *data, "{choice:?} flush {flush} {path:?}: differs");
            }
        }
        if engine.backend() == Backend::IoUring {
            // Writes of at most 1 MiB in one part each are one writev, so
            // both runs issue the same writes.
            assert_eq!(ops[1] - ops[0], files.len() as u64, "{choice:?}: {ops:?}");
        }

        // /dev/null takes the write but refuses fsync (EINVAL): with flush
        // that is the file's error, named as the fsync, and only that file's.
        let ok = dir.path().join(format!("{choice:?}-beside-null"));
        for flush in [false, true] {
            let entries = vec![
                (cpath(Path::new("/dev/null")), source_of(&mut rng, b"x")),
                (cpath(&ok), source_of(&mut rng, b"fine")),
                (cpath(Path::new("/dev/null")), WriteSource::empty()),
            ];
            let res = write_files(&engine, entries, W, 0o644, flush, 8).await;
            let want = flush.then_some((Syscall::Fsync, libc::EINVAL));
            assert_eq!(errno(&res[0]), want, "{choice:?} flush {flush}");
            assert!(res[1].is_ok(), "{choice:?} flush {flush}: {:?}", res[1]);
            assert_eq!(errno(&res[2]), want, "{choice:?} flush {flush}, empty");
            assert_eq!(std::fs::read(&ok).expect("read"), b"fine");
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        assert_eq!(open_file_fds(), base_fds, "{choice:?}: descriptors leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_mode_and_empty_lists() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("append_mode_and_empty_lists");
    let pool = Pool::new(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let mask = umask();
    for choice in choices() {
        let engine = start(choice);
        let base_fds = open_file_fds();
        assert!(write_files(&engine, Vec::new(), W, 0o644, true, 4)
            .await
            .is_empty());

        // Two 'a' calls over the same files: the second adds to the end of
        // what the first wrote (and to nothing that was there before it).
        let paths: Vec<CString> = (0..50)
            .map(|i| cpath(&dir.path().join(format!("{choice:?}-a-{i}"))))
            .collect();
        let first: Vec<Vec<u8>> = paths
            .iter()
            .map(|_| {
                let size = random_size(&mut rng);
                pool.bytes(&mut rng, size)
            })
            .collect();
        let second: Vec<Vec<u8>> = paths
            .iter()
            .map(|_| {
                let size = rng.gen_range(0..5000);
                pool.bytes(&mut rng, size)
            })
            .collect();
        let files: Vec<(CString, Vec<u8>)> = paths.iter().cloned().zip(first.clone()).collect();
        let entries = entries_of(&mut rng, &files);
        let res = write_files(&engine, entries, A, 0o640, false, 16).await;
        assert!(res.iter().all(Result::is_ok), "{choice:?}: {res:?}");
        let files: Vec<(CString, Vec<u8>)> = paths.iter().cloned().zip(second.clone()).collect();
        let entries = entries_of(&mut rng, &files);
        let res = write_files(&engine, entries, A, 0o600, false, 16).await;
        assert!(res.iter().all(Result::is_ok), "{choice:?}: {res:?}");
        for ((path, a), b) in paths.iter().zip(&first).zip(&second) {
            let p = path.to_str().expect("utf-8");
            let got = std::fs::read(p).expect("read back");
            assert!(got == [a.as_slice(), b].concat(), "{choice:?} {p}: append");
            // The mode applies when the file is created (the first call).
            let perm = std::fs::metadata(p).expect("stat").permissions().mode();
            assert_eq!(perm & 0o777, 0o640 & !mask, "{choice:?} {p}: mode");
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        assert_eq!(open_file_fds(), base_fds, "{choice:?}: descriptors leaked");
    }
}
