//! The engine, the read-ahead `Reader` and the `ReadPump`, each test run on
//! every backend this build has (io_uring and the thread-pool fallback).
//!
//! Random sizes, ranges and chunkings come from a seeded RNG. The seed is
//! printed (run with `--nocapture` to see it); `URING_FS_TEST_SEED=<n>`
//! replays a run.
//!
//! Tests that count open descriptors take `FD_GATE` exclusively and every
//! other test shares it, so no test opens or closes a file behind a count's
//! back. The counts are of descriptors naming filesystem paths: the runtimes
//! that the harness builds and drops for other tests at any moment own only
//! anonymous inodes (epoll, eventfd) and sockets.

// Test helpers may unwrap and expect: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{
    assert_nothing_pending, choices, cpath, eventually, open_file_fds, random_bytes, random_file,
    rng, start, HAS_URING,
};

use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use tokio::io::AsyncReadExt;
use tokio::sync::RwLock;
use uring_fs_core::stream::pump::Callback;
use uring_fs_core::CURRENT_POSITION;
use uring_fs_core::{
    Choice, Engine, OpError, PoolBuf, PumpOptions, ReadPump, Reader, ReaderOptions, Source, Syscall,
};

static FD_GATE: RwLock<()> = RwLock::const_new(());

/// Opens `path`, reads the range chunk by chunk, finishes and closes.
async fn read_chunks(engine: &Engine, path: &Path, opts: ReaderOptions) -> Vec<PoolBuf> {
    let fd = engine
        .open(cpath(path), libc::O_RDONLY, 0)
        .await
        .expect("open");
    let mut reader = Reader::new(engine.clone(), fd, opts);
    let mut chunks = Vec::new();
    while let Some(c) = reader.next_chunk().await.expect("next_chunk") {
        chunks.push(c);
    }
    // The end is sticky.
    assert!(reader.next_chunk().await.expect("after the end").is_none());
    reader.finish().await;
    engine.close(fd).await.expect("close");
    chunks
}

/// The bytes a range selects from `data`.
fn expected(data: &[u8], opts: &ReaderOptions) -> Vec<u8> {
    let len = data.len() as u64;
    let start = opts.start.min(len);
    let end = opts.end.unwrap_or(len).clamp(start, len);
    data[start as usize..end as usize].to_vec()
}

/// The chunks concatenate to `want`, and are cut like fs streams cut them:
/// every chunk but the last exactly `chunk_size`, none empty.
fn check_chunks(chunks: &[PoolBuf], want: &[u8], chunk_size: usize, ctx: &str) {
    let got: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    assert!(
        got == want,
        "{ctx}: {} bytes read, {} expected",
        got.len(),
        want.len()
    );
    if let Some((last, rest)) = chunks.split_last() {
        for (i, c) in rest.iter().enumerate() {
            assert_eq!(c.len(), chunk_size, "{ctx}: chunk {i} of {}", chunks.len());
        }
        assert!(
            (1..=chunk_size).contains(&last.len()),
            "{ctx}: last chunk has {} bytes",
            last.len()
        );
    }
    assert_eq!(
        chunks.len(),
        want.len().div_ceil(chunk_size),
        "{ctx}: chunk count"
    );
}

/// A chunk size from every region that matters (tiny, around a page,
/// around the default, large), raised so a range needs at most ~2000 chunks.
fn random_chunk_size(rng: &mut StdRng, range_len: u64) -> usize {
    let c = match rng.gen_range(0..4) {
        0 => rng.gen_range(1..=64),
        1 => rng.gen_range(4000..=4200),
        2 => rng.gen_range(60_000..=70_000),
        _ => rng.gen_range(1..=1 << 20),
    };
    c.max((range_len / 2000) as usize + 1)
}

fn random_range(rng: &mut StdRng, size: u64) -> ReaderOptions {
    let point = |rng: &mut StdRng| match rng.gen_range(0..5) {
        0 => 0,
        1 => size,
        2 => size + rng.gen_range(1..10_000),
        _ => rng.gen_range(0..=size),
    };
    let start = point(rng);
    let end = match rng.gen_range(0..4) {
        0 => None,
        1 => Some(start + rng.gen_range(0..=200_000)),
        _ => Some(point(rng).max(start)),
    };
    let len = end.unwrap_or(size).min(size).saturating_sub(start);
    ReaderOptions {
        start,
        end,
        chunk_size: random_chunk_size(rng, len),
        max_window: rng.gen_range(1..=16),
    }
}

struct Files {
    _dir: tempfile::TempDir,
    files: Vec<(PathBuf, Vec<u8>)>,
}

/// Files of the edge sizes, ~3 MiB, and a few random odd sizes.
fn test_files(rng: &mut StdRng) -> Files {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sizes = vec![0, 1, 4095, 4096, 65535, 65536, 65537, (3 << 20) + 4097];
    sizes.extend((0..4).map(|_| rng.gen_range(0..200_000) | 1));
    let files = sizes
        .into_iter()
        .enumerate()
        .map(|(i, size)| {
            let p = dir.path().join(format!("f{i}-{size}"));
            let data = random_bytes(rng, size);
            std::fs::write(&p, &data).expect("write");
            (p, data)
        })
        .collect();
    Files { _dir: dir, files }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_match_file_slices_for_random_sizes_and_ranges() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("chunks_match_file_slices_for_random_sizes_and_ranges");
    let files = test_files(&mut rng);
    for choice in choices() {
        let engine = start(choice);
        for (path, data) in &files.files {
            let size = data.len() as u64;
            let whole = ReaderOptions::default();
            let chunks = read_chunks(&engine, path, whole).await;
            check_chunks(
                &chunks,
                data,
                whole.chunk_size,
                &format!("{choice:?} {size} whole"),
            );
            for _ in 0..6 {
                let opts = random_range(&mut rng, size);
                let ctx = format!("{choice:?} size {size} {opts:?}");
                let chunks = read_chunks(&engine, path, opts).await;
                check_chunks(&chunks, &expected(data, &opts), opts.chunk_size, &ctx);
            }
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_read_matches_the_file() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("async_read_matches_the_file");
    let files = test_files(&mut rng);
    for choice in choices() {
        let engine = start(choice);
        for (path, data) in &files.files {
            let size = data.len() as u64;
            let fd = engine
                .open(cpath(path), libc::O_RDONLY, 0)
                .await
                .expect("open");

            // read_to_end over the whole file.
            let opts = ReaderOptions {
                chunk_size: random_chunk_size(&mut rng, size),
                max_window: rng.gen_range(1..=16),
                ..Default::default()
            };
            let mut reader = Reader::new(engine.clone(), fd, opts);
            let mut out = Vec::new();
            reader.read_to_end(&mut out).await.expect("read_to_end");
            assert!(out == *data, "{choice:?} size {size} {opts:?}: read_to_end");
            reader.finish().await;

            // A random range through a small, odd-sized buffer, so chunks are
            // copied out in pieces.
            let opts = random_range(&mut rng, size);
            let mut reader = Reader::new(engine.clone(), fd, opts);
            let mut out = Vec::new();
            let mut buf = [0u8; 777];
            loop {
                let n = reader.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            assert!(
                out == expected(data, &opts),
                "{choice:?} size {size} {opts:?}: read"
            );
            reader.finish().await;
            engine.close(fd).await.expect("close");
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_are_fs_sized_except_the_last() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("chunks_are_fs_sized_except_the_last");
    let dir = tempfile::tempdir().expect("tempdir");
    let odd = dir.path().join("odd");
    let odd_data = random_bytes(&mut rng, 1_000_003);
    std::fs::write(&odd, &odd_data).expect("write");
    let even = dir.path().join("even");
    let even_data = random_bytes(&mut rng, 16 * 65536);
    std::fs::write(&even, &even_data).expect("write");
    let lens = |chunks: &[PoolBuf]| chunks.iter().map(|c| c.len()).collect::<Vec<_>>();
    for choice in choices() {
        let engine = start(choice);
        let opts = ReaderOptions {
            chunk_size: 65536,
            max_window: 4,
            ..Default::default()
        };
        let mut want = vec![65536; 15];
        want.push(1_000_003 - 15 * 65536);
        assert_eq!(
            lens(&read_chunks(&engine, &odd, opts).await),
            want,
            "{choice:?} odd"
        );
        // A size that is a multiple of the chunk: no empty chunk at the end.
        assert_eq!(
            lens(&read_chunks(&engine, &even, opts).await),
            vec![65536; 16],
            "{choice:?} even"
        );
        // A range: chunks count from `start`, the last one stops at `end`.
        let opts = ReaderOptions {
            start: 100,
            end: Some(100 + 3 * 4096 + 5),
            chunk_size: 4096,
            max_window: 2,
        };
        let chunks = read_chunks(&engine, &odd, opts).await;
        assert_eq!(lens(&chunks), vec![4096, 4096, 4096, 5], "{choice:?} range");
        check_chunks(&chunks, &expected(&odd_data, &opts), 4096, "range");
        // One-byte chunks.
        let opts = ReaderOptions {
            start: 7,
            end: Some(7 + 300),
            chunk_size: 1,
            max_window: 16,
        };
        let chunks = read_chunks(&engine, &even, opts).await;
        assert_eq!(lens(&chunks), vec![1; 300], "{choice:?} 1-byte chunks");
        check_chunks(&chunks, &even_data[7..307], 1, "1-byte chunks");
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_past_the_end_and_empty_ranges() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("ranges_past_the_end_and_empty_ranges");
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, data) = random_file(dir.path(), "f", &mut rng, 100_000);
    let size = data.len() as u64;
    let range = |start: u64, end: Option<u64>| ReaderOptions {
        start,
        end,
        chunk_size: 4096,
        max_window: 8,
    };
    for choice in choices() {
        let engine = start(choice);
        let cases = [
            // end beyond the file: up to EOF.
            (range(0, Some(size + 1)), &data[..]),
            (range(99_000, Some(10 * size)), &data[99_000..]),
            // start beyond (or at) the end of the file: nothing.
            (range(size + 1, None), &[][..]),
            (range(size + 1, Some(size + 5000)), &[][..]),
            (range(size, None), &[][..]),
            // start == end: nothing.
            (range(0, Some(0)), &[][..]),
            (range(5000, Some(5000)), &[][..]),
            // start > end: nothing.
            (range(5000, Some(10)), &[][..]),
            // one byte.
            (range(size - 1, Some(size)), &data[data.len() - 1..]),
            (range(4095, Some(4096)), &data[4095..4096]),
        ];
        for (opts, want) in cases {
            let chunks = read_chunks(&engine, &p, opts).await;
            check_chunks(&chunks, want, 4096, &format!("{choice:?} {opts:?}"));
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

/// A file that grows while it is read is read on, as fs reads it: fs ends
/// a stream only when a read issued after the previous chunk returns
/// nothing. Here the reads ahead saw the end before the file grew: one
/// whose chunk came back short (the file was 1.5 chunks), and one that
/// came back empty (the file was exactly 2 chunks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_grows_while_read_is_read_on() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("a_file_that_grows_while_read_is_read_on");
    let dir = tempfile::tempdir().expect("tempdir");
    const CHUNK: usize = 4096;
    for choice in choices() {
        let engine = start(choice);
        for (i, len) in [CHUNK + CHUNK / 2, 2 * CHUNK].into_iter().enumerate() {
            let (p, mut data) = random_file(dir.path(), &format!("g{i}"), &mut rng, len);
            let fd = engine
                .open(cpath(&p), libc::O_RDONLY, 0)
                .await
                .expect("open");
            let opts = ReaderOptions {
                start: 0,
                end: None,
                chunk_size: CHUNK,
                max_window: 8,
            };
            let mut reader = Reader::new(engine.clone(), fd, opts);
            let mut got = reader
                .next_chunk()
                .await
                .expect("read")
                .expect("a chunk")
                .to_vec();
            // Let the reads ahead reach the end of the file as it is now.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let more = random_bytes(&mut rng, 3 * CHUNK);
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&p)
                .expect("append");
            std::io::Write::write_all(&mut f, &more).expect("append");
            data.extend_from_slice(&more);
            while let Some(c) = reader.next_chunk().await.expect("read") {
                got.extend_from_slice(&c);
            }
            reader.finish().await;
            engine.close(fd).await.expect("close");
            assert!(
                got == data,
                "{choice:?} {len}: {} bytes read of the {} the file has",
                got.len(),
                data.len()
            );
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

/// A pump decides where a file ends when fs would: when the consumer takes
/// the chunk before the suspected end (fs reads again once it has pushed
/// the previous chunk): a file that grew before that take is read on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pump_decides_the_end_when_the_consumer_takes_the_last_chunk() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("pump_decides_the_end_when_the_consumer_takes_the_last_chunk");
    let dir = tempfile::tempdir().expect("tempdir");
    const CHUNK: usize = 4096;
    for choice in choices() {
        for grow in [false, true] {
            let (p, mut data) =
                random_file(dir.path(), &format!("p{grow}"), &mut rng, CHUNK + CHUNK / 2);
            let engine = start(choice);
            let pump = path_pump(&engine, &p, false, CHUNK, 4);
            // The pump reads both chunks (the second short) and waits.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if grow {
                data.extend_from_slice(&append_random(&p, &mut rng, 3 * CHUNK));
            }
            let seen = consume_to_end(&pump).await;
            assert!(matches!(seen.end, Some(Ok(()))), "{choice:?} {grow}");
            assert!(
                seen.bytes == data,
                "{choice:?} grown {grow}: {} bytes of {}",
                seen.bytes.len(),
                data.len()
            );
            destroy_and_shut_down(&pump, &engine).await;
        }
    }
}

/// With the file's size known at open (`start_unless_stream`, as a read
/// stream without `start` has it), a file is read with one read past its
/// end at most, as fs reads it, and the end decided when fs would (a file that
/// grew before the consumer took its last chunk is read on, one that did
/// not ends there). Sizes a multiple of the chunk and not, on every backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_size_reads_nothing_past_the_end_and_still_sees_growth() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("a_known_size_reads_nothing_past_the_end_and_still_sees_growth");
    let dir = tempfile::tempdir().expect("tempdir");
    const CHUNK: usize = 4096;
    for choice in choices() {
        for len in [0, CHUNK / 2, 4 * CHUNK, 4 * CHUNK + 100] {
            for grow in [false, true] {
                let (p, mut data) =
                    random_file(dir.path(), &format!("k{len}-{grow}"), &mut rng, len);
                let engine = start(choice);
                let pump = path_pump(&engine, &p, true, CHUNK, 8);
                // The pump reads what the file has and waits for the consumer.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let reads = engine.stats().ops;
                if grow {
                    let more = append_random(&p, &mut rng, 3 * CHUNK);
                    // An empty file has no chunk for the consumer to take
                    // first: its end was decided at once, as fs's first
                    // read finds it, before the file grew.
                    if len > 0 {
                        data.extend_from_slice(&more);
                    }
                }
                let seen = consume_to_end(&pump).await;
                let ctx = format!("{choice:?} {len} bytes, grown {grow}");
                assert!(matches!(seen.end, Some(Ok(()))), "{ctx}");
                assert!(
                    seen.bytes == data,
                    "{ctx}: {} bytes of {}",
                    seen.bytes.len(),
                    data.len()
                );
                // open, fstat, one read per chunk the file had, and one at
                // its end (a short last chunk's continuation is that read):
                // no more past its end before the consumer came.
                let chunks = len.div_ceil(CHUNK) as u64;
                assert!(
                    reads <= 2 + chunks + 1,
                    "{ctx}: {reads} operations before the consumer took anything, for {chunks} chunks"
                );
                destroy_and_shut_down(&pump, &engine).await;
            }
        }
    }
}

/// A pump reading the file at `p` in chunks of `chunk`, up to `window`
/// reads in flight (`start_unless_stream`: the file's size is taken at open).
fn path_pump(
    engine: &Engine,
    p: &Path,
    start_unless_stream: bool,
    chunk: usize,
    window: usize,
) -> ReadPump {
    let (open_tx, _open_rx) = mpsc::channel();
    ReadPump::start(
        &tokio::runtime::Handle::current(),
        engine.clone(),
        Source::Path(cpath(p), libc::O_RDONLY, 0),
        PumpOptions {
            start_unless_stream,
            reader: ReaderOptions {
                chunk_size: chunk,
                max_window: window,
                ..Default::default()
            },
            read_ahead: 8,
            grow_read_ahead_to: 0,
        },
        on_open(open_tx),
    )
}

/// Appends `n` random bytes to the file at `p` and returns them.
fn append_random(p: &Path, rng: &mut StdRng, n: usize) -> Vec<u8> {
    let more = random_bytes(rng, n);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(p)
        .expect("append");
    std::io::Write::write_all(&mut f, &more).expect("append");
    more
}

/// Everything `pump` delivers, taken on a thread of its own as the JS
/// thread takes it.
async fn consume_to_end(pump: &ReadPump) -> Consumed {
    let consumer = {
        let pump = pump.clone();
        std::thread::spawn(move || consume(&pump, usize::MAX))
    };
    tokio::task::spawn_blocking(move || consumer.join())
        .await
        .expect("join")
        .expect("consumer thread")
}

/// Destroys `pump` (closing its descriptor), then shuts `engine` down with
/// nothing left pending.
async fn destroy_and_shut_down(pump: &ReadPump, engine: &Engine) {
    let calls = Closed::default();
    let (tx, rx) = mpsc::channel();
    pump.destroy(true, on_closed(&calls, tx));
    rx.recv_timeout(Duration::from_secs(10)).expect("on_closed");
    engine.shutdown().await;
    assert_nothing_pending(engine).await;
}

/// Reads every chunk of an already open descriptor (not closed here).
async fn read_fd_chunks(engine: &Engine, fd: RawFd, opts: ReaderOptions) -> Vec<PoolBuf> {
    let mut reader = Reader::new(engine.clone(), fd, opts);
    let mut chunks = Vec::new();
    while let Some(c) = reader.next_chunk().await.expect("next_chunk") {
        chunks.push(c);
    }
    reader.finish().await;
    chunks
}

fn file_position(fd: RawFd) -> i64 {
    // SAFETY: lseek on a descriptor this test owns; no memory is involved.
    unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_position_reads_follow_and_advance_the_fd_offset() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("current_position_reads_follow_and_advance_the_fd_offset");
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, data) = random_file(dir.path(), "f", &mut rng, 200_003);
    for choice in choices() {
        let engine = start(choice);
        let fd = engine
            .open(cpath(&p), libc::O_RDONLY, 0)
            .await
            .expect("open");
        let at_pos = |start: u64, end: Option<u64>, chunk_size: usize| ReaderOptions {
            start,
            end,
            chunk_size,
            max_window: 8,
        };

        // From where the descriptor points to the end of the file.
        // SAFETY: as in file_position.
        assert_eq!(unsafe { libc::lseek(fd, 12_345, libc::SEEK_SET) }, 12_345);
        let chunks = read_fd_chunks(&engine, fd, at_pos(CURRENT_POSITION, None, 4096)).await;
        check_chunks(
            &chunks,
            &data[12_345..],
            4096,
            &format!("{choice:?} to EOF"),
        );
        assert_eq!(
            file_position(fd),
            data.len() as i64,
            "{choice:?}: offset advanced"
        );

        // With `end`, a byte count from the current position.
        // SAFETY: as in file_position.
        assert_eq!(unsafe { libc::lseek(fd, 1000, libc::SEEK_SET) }, 1000);
        let chunks = read_fd_chunks(&engine, fd, at_pos(CURRENT_POSITION, Some(5000), 4096)).await;
        check_chunks(
            &chunks,
            &data[1000..6000],
            4096,
            &format!("{choice:?} 5000 bytes"),
        );
        assert_eq!(
            file_position(fd),
            6000,
            "{choice:?}: exactly `end` bytes consumed"
        );

        // A positional read leaves the offset alone.
        let chunks = read_fd_chunks(&engine, fd, at_pos(0, Some(100), 4096)).await;
        check_chunks(
            &chunks,
            &data[..100],
            4096,
            &format!("{choice:?} positional"),
        );
        assert_eq!(
            file_position(fd),
            6000,
            "{choice:?}: pread does not move the offset"
        );

        engine.close(fd).await.expect("close");
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_position_reads_a_pipe_written_slowly() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("current_position_reads_a_pipe_written_slowly");
    let data = random_bytes(&mut rng, 300_001);
    for choice in choices() {
        let engine = start(choice);
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the local array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let [rd, wr] = fds;
        let writer = {
            let data = data.clone();
            std::thread::spawn(move || {
                for piece in data.chunks(7919) {
                    let mut rest = piece;
                    while !rest.is_empty() {
                        // SAFETY: writes from a live slice to our pipe.
                        let n = unsafe { libc::write(wr, rest.as_ptr().cast(), rest.len()) };
                        assert!(n > 0, "write to pipe: {}", io::Error::last_os_error());
                        rest = &rest[n as usize..];
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                // SAFETY: the write end is ours; closing it signals EOF.
                unsafe { libc::close(wr) };
            })
        };
        let opts = ReaderOptions {
            start: CURRENT_POSITION,
            end: None,
            chunk_size: 65536,
            max_window: 8,
        };
        // At the current position each read is a chunk as it returns (as
        // fs delivers it): the bytes are complete and in order, no chunk is
        // empty or larger than chunk_size, and the pipe's pacing shows up
        // as chunks shorter than chunk_size.
        let chunks = read_fd_chunks(&engine, rd, opts).await;
        writer.join().expect("writer");
        let got: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert!(
            got == data,
            "{choice:?} pipe: {} of {} bytes",
            got.len(),
            data.len()
        );
        assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= 65536));
        assert!(
            chunks.len() > data.len() / 65536 + 1,
            "{choice:?} pipe: {} chunks, short reads were merged",
            chunks.len()
        );
        engine.close(rd).await.expect("close");
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_of_a_missing_file_is_enoent() {
    let _gate = FD_GATE.read().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for choice in choices() {
        let engine = start(choice);
        let err = engine
            .open(cpath(&dir.path().join("missing")), libc::O_RDONLY, 0)
            .await
            .expect_err("opening a missing file");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{choice:?}: {err}");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_directory_is_eisdir() {
    let _gate = FD_GATE.read().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for choice in choices() {
        let engine = start(choice);
        let fd = engine
            .open(cpath(dir.path()), libc::O_RDONLY, 0)
            .await
            .expect("open(O_RDONLY) of a directory succeeds");
        assert!(engine.fstat(fd).await.expect("fstat").is_dir());

        let mut reader = Reader::new(engine.clone(), fd, ReaderOptions::default());
        let err = reader.next_chunk().await.expect_err("reading a directory");
        assert_eq!(err.raw_os_error(), Some(libc::EISDIR), "{choice:?}: {err}");
        // After an error the reader is done.
        assert!(reader
            .next_chunk()
            .await
            .expect("after the error")
            .is_none());
        reader.finish().await;

        let mut reader = Reader::new(engine.clone(), fd, ReaderOptions::default());
        let err = reader
            .read_to_end(&mut Vec::new())
            .await
            .expect_err("AsyncRead of a directory");
        assert_eq!(err.raw_os_error(), Some(libc::EISDIR), "{choice:?}: {err}");
        reader.finish().await;

        engine.close(fd).await.expect("close");
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

/// Polls `fut` once (so its operation is submitted) and hands it back.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_readers_and_ops_mid_flight_leaves_nothing_pending() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("dropping_readers_and_ops_mid_flight_leaves_nothing_pending");
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, _) = random_file(dir.path(), "big", &mut rng, 3 << 20);
    for choice in choices() {
        let engine = start(choice);
        let base = open_file_fds();
        let fd = engine
            .open(cpath(&p), libc::O_RDONLY, 0)
            .await
            .expect("open");

        // Readers dropped with a full window of reads in flight.
        for _ in 0..20 {
            let mut reader = Reader::new(
                engine.clone(),
                fd,
                ReaderOptions {
                    start: rng.gen_range(0..1 << 20),
                    chunk_size: 65536,
                    max_window: 8,
                    ..Default::default()
                },
            );
            for _ in 0..rng.gen_range(0..4) {
                assert!(reader.next_chunk().await.expect("chunk").is_some());
            }
            // Get the window's reads submitted, then walk away.
            let _ = poll_once(&mut pin!(reader.next_chunk())).await;
            drop(reader);
        }

        // Single reads dropped after their first poll.
        for i in 0..50u64 {
            let mut read =
                Box::pin(engine.read_at(fd, PoolBuf::with_capacity(65536), i * 4096, 65536));
            let _ = poll_once(&mut read).await;
            drop(read);
        }

        // Opens dropped after their first poll: a descriptor the kernel (or
        // the pool thread) opens anyway must be closed by the engine.
        for _ in 0..50 {
            let mut open = Box::pin(engine.open(cpath(&p), libc::O_RDONLY, 0));
            if let Poll::Ready(res) = poll_once(&mut open).await {
                engine.close(res.expect("open")).await.expect("close");
            }
            drop(open);
        }

        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
        // Nothing reads from `fd` any more: closing it is safe. (After
        // shutdown the io_uring engine takes no new work, so plain close.)
        // SAFETY: fd was opened above and is closed once, here.
        assert_eq!(unsafe { libc::close(fd) }, 0);
        let back = eventually(Duration::from_secs(5), || open_file_fds() == base).await;
        assert!(
            back,
            "{choice:?}: {} file fds open, {base} before",
            open_file_fds()
        );
        println!("{choice:?}: {:?}", engine.stats());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_mid_file_then_close_200_times_leaks_no_fd() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("finish_mid_file_then_close_200_times_leaks_no_fd");
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, data) = random_file(dir.path(), "big", &mut rng, 3 << 20);
    for choice in choices() {
        let engine = start(choice);
        let base = open_file_fds();
        for i in 0..200 {
            let fd = engine
                .open(cpath(&p), libc::O_RDONLY, 0)
                .await
                .expect("open");
            let opts = ReaderOptions {
                start: rng.gen_range(0..1 << 20),
                chunk_size: 65536,
                max_window: 8,
                ..Default::default()
            };
            let mut reader = Reader::new(engine.clone(), fd, opts);
            let mut got = Vec::new();
            for _ in 0..rng.gen_range(1..=3) {
                got.extend_from_slice(&reader.next_chunk().await.expect("read").expect("chunk"));
            }
            let at = opts.start as usize;
            assert!(got == data[at..at + got.len()], "{choice:?} cycle {i}");
            // The window is full of reads now; finish cancels and drains it.
            reader.finish().await;
            let s = engine.stats();
            assert_eq!(
                s.ops, s.completions,
                "{choice:?} cycle {i}: finish left ops in flight"
            );
            assert!(reader.next_chunk().await.expect("after finish").is_none());
            engine.close(fd).await.expect("close after finish");
        }
        assert_eq!(open_file_fds(), base, "{choice:?}: descriptors leaked");
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

/// Raises the soft descriptor limit to at least `want` (if the hard limit
/// allows), for tests that keep many files open.
fn ensure_fd_limit(want: u64) {
    // SAFETY: getrlimit/setrlimit only read and write the local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && (lim.rlim_cur as u64) < want {
            lim.rlim_cur = (want as libc::rlim_t).min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_readers_over_distinct_files() {
    let _gate = FD_GATE.read().await;
    ensure_fd_limit(4096);
    let mut rng = rng("thousand_concurrent_readers_over_distinct_files");
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Arc<Vec<(PathBuf, Vec<u8>)>> = Arc::new(
        (0..1000)
            .map(|i| {
                let p = dir.path().join(format!("small-{i}"));
                let len = rng.gen_range(0..=12_000);
                let data = random_bytes(&mut rng, len);
                std::fs::write(&p, &data).expect("write");
                (p, data)
            })
            .collect(),
    );
    for choice in choices() {
        let engine = start(choice);
        // Every task opens its file, then waits until all are open, so all
        // 1000 readers really are reading at once.
        let barrier = Arc::new(tokio::sync::Barrier::new(files.len()));
        let tasks: Vec<_> = (0..files.len())
            .map(|i| {
                let (engine, files, barrier) = (engine.clone(), files.clone(), barrier.clone());
                let chunk_size = [1000, 4096, 65536][i % 3];
                tokio::spawn(async move {
                    let fd = engine.open(cpath(&files[i].0), libc::O_RDONLY, 0).await?;
                    barrier.wait().await;
                    let opts = ReaderOptions {
                        chunk_size,
                        ..Default::default()
                    };
                    let mut reader = Reader::new(engine.clone(), fd, opts);
                    let mut out = Vec::new();
                    let res = async {
                        while let Some(c) = reader.next_chunk().await? {
                            out.extend_from_slice(&c);
                        }
                        io::Result::Ok(())
                    }
                    .await;
                    reader.finish().await;
                    engine.close(fd).await?;
                    res.map(|()| out)
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let out = t
                .await
                .expect("task")
                .unwrap_or_else(|e| panic!("{choice:?} file {i}: {e}"));
            assert!(out == files[i].1, "{choice:?} file {i}: wrong bytes");
        }
        let s = engine.stats();
        println!("{choice:?}: {s:?}");
        let total: usize = files.iter().map(|f| f.1.len()).sum();
        assert_eq!(s.bytes, total as u64, "{choice:?}: bytes counted");
        if choice == Choice::IoUring {
            assert!(
                s.enters < s.ops,
                "io_uring should batch submissions: {} enters for {} ops",
                s.enters,
                s.ops
            );
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

type Closed = Arc<Mutex<Vec<Result<(), String>>>>;

/// An `on_closed` callback that records its calls and signals `tx`.
fn on_closed(calls: &Closed, tx: mpsc::Sender<()>) -> Box<dyn FnOnce(Result<(), OpError>) + Send> {
    let calls = calls.clone();
    Box::new(move |res| {
        calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(res.map_err(|e| format!("{e:?}")));
        let _ = tx.send(());
    })
}

fn on_open(
    tx: mpsc::Sender<Result<RawFd, OpError>>,
) -> Box<dyn FnOnce(Result<RawFd, OpError>) + Send> {
    Box::new(move |res| {
        let _ = tx.send(res);
    })
}

/// What a consumer thread saw.
struct Consumed {
    bytes: Vec<u8>,
    chunks: usize,
    end: Option<Result<(), OpError>>,
    waits: usize,
}

/// Takes from `pump` on the calling (non-runtime) thread until the end or
/// until `stop_after` chunks, waiting on the `on_ready` callback in between.
fn consume(pump: &ReadPump, stop_after: usize) -> Consumed {
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "the consumer must not be a runtime thread"
    );
    let (tx, rx) = mpsc::channel::<()>();
    let mut seen = Consumed {
        bytes: Vec::new(),
        chunks: 0,
        end: None,
        waits: 0,
    };
    while seen.chunks < stop_after {
        let tx = tx.clone();
        let taken = pump.take(move || -> Callback {
            Box::new(move || {
                let _ = tx.send(());
            })
        });
        let got = taken.chunks.len();
        for c in &taken.chunks {
            seen.bytes.extend_from_slice(c);
        }
        seen.chunks += got;
        if let Some(end) = taken.end {
            assert_eq!(got, 0, "the end comes after the last chunk");
            seen.end = Some(end);
            break;
        }
        if got == 0 {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("on_ready is called once something is ready");
            seen.waits += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pump_hands_chunks_to_a_foreign_thread() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("pump_hands_chunks_to_a_foreign_thread");
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, data) = random_file(dir.path(), "f", &mut rng, (1 << 20) + 12_345);
    for choice in choices() {
        let engine = start(choice);
        let base = open_file_fds();
        let (open_tx, open_rx) = mpsc::channel();
        let pump = ReadPump::start(
            &tokio::runtime::Handle::current(),
            engine.clone(),
            Source::Path(cpath(&p), libc::O_RDONLY, 0),
            PumpOptions {
                start_unless_stream: false,
                reader: ReaderOptions {
                    chunk_size: 65536,
                    max_window: 4,
                    ..Default::default()
                },
                read_ahead: 8,
                grow_read_ahead_to: 0,
            },
            on_open(open_tx),
        );
        let consumer = {
            let pump = pump.clone();
            std::thread::spawn(move || consume(&pump, usize::MAX))
        };
        let seen = tokio::task::spawn_blocking(move || consumer.join())
            .await
            .expect("join")
            .expect("consumer thread");
        let fd = open_rx
            .try_recv()
            .expect("on_open was called")
            .expect("open");
        assert!(fd >= 0);
        assert!(
            matches!(seen.end, Some(Ok(()))),
            "{choice:?}: {:?}",
            seen.end
        );
        assert!(seen.bytes == data, "{choice:?}: wrong bytes");
        assert_eq!(seen.chunks, data.len().div_ceil(65536));
        println!("{choice:?}: {} chunks, {} waits", seen.chunks, seen.waits);

        // Like fs streams, the end of the data does not close the
        // descriptor; destroy does, then reports it (once).
        assert_eq!(open_file_fds(), base + 1, "{choice:?}: open until destroy");
        let calls = Closed::default();
        let (tx, rx) = mpsc::channel();
        pump.destroy(true, on_closed(&calls, tx));
        rx.recv_timeout(Duration::from_secs(10)).expect("on_closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(*calls.lock().unwrap(), vec![Ok(())], "{choice:?}");
        assert_eq!(
            open_file_fds(),
            base,
            "{choice:?}: the pump left its fd open"
        );
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

/// A lender that counts its buffers still alive.
struct Counted(#[allow(dead_code)] Vec<u8>, Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `n` buffers of `size` bytes lent by `Counted` owners.
fn lent_bufs(alive: &Arc<AtomicUsize>, n: usize, size: usize) -> Vec<PoolBuf> {
    (0..n)
        .map(|_| {
            // Not zeroed: the consumer should keep up with the reads.
            let mut v: Vec<u8> = Vec::with_capacity(size);
            let p = std::ptr::NonNull::new(v.as_mut_ptr()).expect("non-null");
            alive.fetch_add(1, Ordering::SeqCst);
            // SAFETY: the Vec's heap block does not move when the Vec moves
            // into its owner, which keeps it until the PoolBuf is done.
            unsafe { PoolBuf::lent(Box::new(Counted(v, alive.clone())), p, size) }
        })
        .collect()
}

/// What a lending consumer saw.
struct Lending {
    bytes: Vec<u8>,
    chunks: usize,
    /// Chunks that came in lent memory.
    lent: usize,
    /// Most lent buffers alive at once (after a take).
    most_alive: usize,
    /// Chunks the first take after the pause found.
    after_pause: usize,
    /// Takes that found nothing ready, after a first chunk and before the
    /// pause (the consumer kept up with the reads).
    starved: usize,
}

/// Takes chunks as the read stream does, lending with each take as many
/// buffers as the read-ahead has room for; after `pause_after` chunks
/// sleeps `pause` once, and stops after `stop_after` chunks (or the end).
fn consume_lending(
    pump: &ReadPump,
    alive: &Arc<AtomicUsize>,
    size: usize,
    stop_after: usize,
    (pause_after, pause): (usize, Duration),
) -> Lending {
    let (tx, rx) = mpsc::channel::<()>();
    let mut seen = Lending {
        bytes: Vec::new(),
        chunks: 0,
        lent: 0,
        most_alive: 0,
        after_pause: 0,
        starved: 0,
    };
    let mut paused = false;
    while seen.chunks < stop_after {
        let pausing = !paused && seen.chunks >= pause_after;
        if pausing {
            std::thread::sleep(pause);
            paused = true;
        }
        let tx = tx.clone();
        let taken = pump.take_lending(
            move || -> Callback {
                Box::new(move || {
                    let _ = tx.send(());
                })
            },
            |n| lent_bufs(alive, n, size),
        );
        if pausing {
            seen.after_pause = taken.chunks.len();
        }
        let got = taken.chunks.len();
        for c in taken.chunks {
            seen.bytes.extend_from_slice(&c);
            seen.lent += usize::from(c.is_lent());
            seen.chunks += 1;
        }
        seen.most_alive = seen.most_alive.max(alive.load(Ordering::SeqCst));
        if taken.end.is_some() {
            drop(pump.reclaim());
            break;
        }
        if got == 0 {
            if seen.chunks > 0 && !paused {
                seen.starved += 1;
            }
            rx.recv_timeout(Duration::from_secs(10))
                .expect("on_ready is called once something is ready");
        }
    }
    seen
}

/// A pump over `path` in `chunk`-byte chunks, `read_ahead` chunks ahead
/// (growing to `grow_to`), with the first buffer lent as the read stream
/// lends it.
fn lending_pump(
    engine: &Engine,
    path: &Path,
    chunk: usize,
    (read_ahead, grow_to): (usize, usize),
    alive: &Arc<AtomicUsize>,
) -> ReadPump {
    let pump = ReadPump::start(
        &tokio::runtime::Handle::current(),
        engine.clone(),
        Source::Path(cpath(path), libc::O_RDONLY, 0),
        PumpOptions {
            start_unless_stream: false,
            reader: ReaderOptions {
                chunk_size: chunk,
                max_window: grow_to.max(read_ahead),
                ..Default::default()
            },
            read_ahead,
            grow_read_ahead_to: grow_to,
        },
        Box::new(|_| {}),
    );
    pump.lend(lent_bufs(alive, 1, chunk));
    pump
}

/// [`consume_lending`] on a thread of its own (the consumer must not be a
/// runtime thread).
async fn lending_consumer(
    pump: &ReadPump,
    alive: &Arc<AtomicUsize>,
    chunk: usize,
    stop_after: usize,
    pause: (usize, Duration),
) -> Lending {
    let (pump, alive) = (pump.clone(), alive.clone());
    let consumer =
        std::thread::spawn(move || consume_lending(&pump, &alive, chunk, stop_after, pause));
    tokio::task::spawn_blocking(move || consumer.join())
        .await
        .expect("join")
        .expect("consumer thread")
}

/// The read-ahead of the lending tests, in chunks.
const READ_AHEAD: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pump_reads_into_buffers_the_consumer_lends_and_gives_every_one_back() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("pump_reads_into_buffers_the_consumer_lends_and_gives_every_one_back");
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, data) = random_file(dir.path(), "f", &mut rng, (24 << 20) + 12_345);
    let chunk = 256 << 10;
    for choice in choices() {
        let engine = start(choice);
        for stop_after in [usize::MAX, 7] {
            let alive = Arc::new(AtomicUsize::new(0));
            let pump = lending_pump(&engine, &p, chunk, (READ_AHEAD, 0), &alive);
            let no_pause = (usize::MAX, Duration::ZERO);
            let seen = lending_consumer(&pump, &alive, chunk, stop_after, no_pause).await;
            let (bytes, chunks, lent) = (&seen.bytes, seen.chunks, seen.lent);
            assert!(
                seen.most_alive <= READ_AHEAD,
                "{choice:?}: {} lent buffers out at once, read-ahead {READ_AHEAD}",
                seen.most_alive
            );
            if stop_after == usize::MAX {
                assert!(*bytes == data, "{choice:?}: wrong bytes");
                // Pool memory only for the reads started before the first
                // take (one buffer is lent at the start), and now and then
                // for one whose chunk came while a take that had found
                // nothing ready was lending.
                assert!(
                    lent + 2 * READ_AHEAD >= chunks,
                    "{choice:?}: {lent} of {chunks} chunks lent"
                );
            } else {
                assert!(bytes[..] == data[..bytes.len()], "{choice:?}: wrong bytes");
            }
            drop(pump.reclaim());
            let (tx, rx) = mpsc::channel();
            pump.destroy(true, Box::new(move |r| drop(tx.send(r))));
            rx.recv_timeout(Duration::from_secs(10))
                .expect("on_closed")
                .expect("closed");
            // Every lent buffer is back with its owner: taken as a chunk,
            // reclaimed, or (read when the stream was destroyed) dropped.
            assert!(
                eventually(Duration::from_secs(5), || alive.load(Ordering::SeqCst) == 0).await,
                "{choice:?} stop_after {stop_after}: {} lent buffers never released",
                alive.load(Ordering::SeqCst)
            );
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pump_read_ahead_grows_for_a_consumer_that_keeps_up_only() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("pump_read_ahead_grows_for_a_consumer_that_keeps_up_only");
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, data) = random_file(dir.path(), "f", &mut rng, 24 << 20);
    let chunk = 256 << 10;
    for choice in choices() {
        let engine = start(choice);
        for (grow_to, pause_after) in [(16, 0), (16, 40), (4, 40)] {
            // Whether a consumer keeps up is up to the scheduler: try again
            // (a few times) until one did, for the case that needs it.
            let mut kept_up = false;
            for _attempt in 0..5 {
                let alive = Arc::new(AtomicUsize::new(0));
                let pump = lending_pump(&engine, &p, chunk, (4, grow_to), &alive);
                let pause = (pause_after, Duration::from_millis(300));
                let seen = lending_consumer(&pump, &alive, chunk, usize::MAX, pause).await;
                assert!(
                    seen.bytes == data,
                    "{choice:?} grow_to {grow_to}: wrong bytes"
                );
                close_pump(&pump);
                kept_up = seen.starved > 0;
                // Paused at once (before ever finding nothing ready) or never
                // allowed to grow: at most the first 4 chunks were read
                // ahead. Found nothing ready before its pause: the
                // read-ahead grew. (A consumer that never found nothing
                // may still have made it grow: a take can see the queue
                // empty and, a moment later, a chunk in it.)
                if pause_after == 0 || grow_to == 4 {
                    assert!(
                        seen.after_pause <= 4,
                        "{choice:?} grow_to {grow_to} pause_after {pause_after}: {} chunks read ahead",
                        seen.after_pause
                    );
                } else if kept_up {
                    assert!(
                        seen.after_pause > 4,
                        "{choice:?}: a consumer that kept up found only {} chunks after its pause",
                        seen.after_pause
                    );
                }
                if kept_up || pause_after == 0 {
                    break;
                }
            }
            assert!(
                kept_up || pause_after == 0,
                "{choice:?}: the consumer never kept up"
            );
        }
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

/// Destroys `pump` (closing its descriptor) and waits for that.
fn close_pump(pump: &ReadPump) {
    let (tx, rx) = mpsc::channel();
    pump.destroy(true, Box::new(move |r| drop(tx.send(r))));
    rx.recv_timeout(Duration::from_secs(10))
        .expect("on_closed")
        .expect("closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pump_destroy_mid_stream_calls_on_closed_once() {
    let _gate = FD_GATE.write().await;
    let mut rng = rng("pump_destroy_mid_stream_calls_on_closed_once");
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, data) = random_file(dir.path(), "big", &mut rng, 3 << 20);
    for choice in choices() {
        let engine = start(choice);
        let base = open_file_fds();
        for round in 0..10 {
            let (open_tx, _open_rx) = mpsc::channel();
            let pump = ReadPump::start(
                &tokio::runtime::Handle::current(),
                engine.clone(),
                Source::Path(cpath(&p), libc::O_RDONLY, 0),
                PumpOptions {
                    start_unless_stream: false,
                    reader: ReaderOptions {
                        chunk_size: 65536,
                        max_window: 8,
                        ..Default::default()
                    },
                    read_ahead: 10,
                    grow_read_ahead_to: 0,
                },
                on_open(open_tx),
            );
            let calls = Closed::default();
            let stop_after = rng.gen_range(1..=6);
            let consumer = {
                let (pump, calls) = (pump.clone(), calls.clone());
                std::thread::spawn(move || {
                    let seen = consume(&pump, stop_after);
                    let (tx, rx) = mpsc::channel();
                    pump.destroy(true, on_closed(&calls, tx));
                    rx.recv_timeout(Duration::from_secs(10))
                        .expect("on_closed was called");
                    seen
                })
            };
            let seen = tokio::task::spawn_blocking(move || consumer.join())
                .await
                .expect("join")
                .expect("consumer thread");
            assert!(seen.end.is_none(), "{choice:?}: destroyed before the end");
            assert!(seen.chunks >= stop_after);
            assert!(
                seen.bytes == data[..seen.bytes.len()],
                "{choice:?} round {round}"
            );
            // A second call would show up here.
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(
                *calls.lock().unwrap(),
                vec![Ok(())],
                "{choice:?} round {round}"
            );
            // on_closed means the reads are drained and the fd is closed.
            let s = engine.stats();
            assert_eq!(s.ops, s.completions, "{choice:?} round {round}: {s:?}");
        }
        assert_eq!(
            open_file_fds(),
            base,
            "{choice:?}: destroyed pumps left fds open"
        );
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pump_open_error_is_reported_with_syscall_open() {
    let _gate = FD_GATE.read().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for choice in choices() {
        let engine = start(choice);
        let (open_tx, open_rx) = mpsc::channel();
        let pump = ReadPump::start(
            &tokio::runtime::Handle::current(),
            engine.clone(),
            Source::Path(cpath(&dir.path().join("missing")), libc::O_RDONLY, 0),
            PumpOptions {
                start_unless_stream: false,
                reader: ReaderOptions::default(),
                read_ahead: 8,
                grow_read_ahead_to: 0,
            },
            on_open(open_tx),
        );
        let consumer = {
            let pump = pump.clone();
            std::thread::spawn(move || consume(&pump, usize::MAX))
        };
        let seen = tokio::task::spawn_blocking(move || consumer.join())
            .await
            .expect("join")
            .expect("consumer thread");
        let opened = open_rx.try_recv().expect("on_open was called");
        let err = opened.expect_err("open of a missing file");
        assert_eq!(err.syscall, Syscall::Open);
        assert_eq!(err.error.raw_os_error(), Some(libc::ENOENT));
        match seen.end {
            Some(Err(e)) => {
                assert_eq!(e.syscall, Syscall::Open, "{choice:?}");
                assert_eq!(e.error.raw_os_error(), Some(libc::ENOENT), "{choice:?}");
            }
            other => panic!("{choice:?}: expected an open error, got {other:?}"),
        }
        assert_eq!(seen.chunks, 0);
        let calls = Closed::default();
        let (tx, rx) = mpsc::channel();
        pump.destroy(true, on_closed(&calls, tx));
        rx.recv_timeout(Duration::from_secs(10)).expect("on_closed");
        assert_eq!(*calls.lock().unwrap(), vec![Ok(())]);
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pump_on_a_borrowed_fd_leaves_it_open() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("pump_on_a_borrowed_fd_leaves_it_open");
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, data) = random_file(dir.path(), "f", &mut rng, 300_001);
    for choice in choices() {
        let engine = start(choice);
        let fd = engine
            .open(cpath(&p), libc::O_RDONLY, 0)
            .await
            .expect("open");
        let (open_tx, open_rx) = mpsc::channel();
        let pump = ReadPump::start(
            &tokio::runtime::Handle::current(),
            engine.clone(),
            Source::Fd(fd),
            PumpOptions {
                start_unless_stream: false,
                reader: ReaderOptions {
                    start: 1000,
                    end: Some(250_000),
                    chunk_size: 16384,
                    max_window: 4,
                },
                read_ahead: 7,
                grow_read_ahead_to: 0,
            },
            on_open(open_tx),
        );
        let consumer = {
            let pump = pump.clone();
            std::thread::spawn(move || consume(&pump, usize::MAX))
        };
        let seen = tokio::task::spawn_blocking(move || consumer.join())
            .await
            .expect("join")
            .expect("consumer thread");
        assert_eq!(open_rx.try_recv().expect("on_open").expect("fd"), fd);
        assert!(matches!(seen.end, Some(Ok(()))), "{choice:?}");
        assert!(seen.bytes == data[1000..250_000], "{choice:?}: wrong bytes");
        let calls = Closed::default();
        let (tx, rx) = mpsc::channel();
        pump.destroy(false, on_closed(&calls, tx));
        rx.recv_timeout(Duration::from_secs(10)).expect("on_closed");
        assert_eq!(*calls.lock().unwrap(), vec![Ok(())]);
        // Not ours to close: still open, and closable by its owner.
        assert!(engine.fstat(fd).await.expect("fd still open").is_regular());
        engine.close(fd).await.expect("close");
        engine.shutdown().await;
        assert_nothing_pending(&engine).await;
    }
}

/// A pump whose consumer stopped taking (backpressure) is parked with
/// completed reads it has not collected; shutdown must still return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_while_a_pump_is_paused() {
    let _gate = FD_GATE.read().await;
    let mut rng = rng("shutdown_returns_while_a_pump_is_paused");
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("big");
    std::fs::write(&p, random_bytes(&mut rng, 2 << 20)).expect("write");
    for choice in choices() {
        let engine = start(choice);
        let (open_tx, open_rx) = mpsc::channel();
        let _pump = ReadPump::start(
            &tokio::runtime::Handle::current(),
            engine.clone(),
            Source::Path(cpath(&p), libc::O_RDONLY, 0),
            PumpOptions {
                start_unless_stream: false,
                reader: ReaderOptions {
                    chunk_size: 65536,
                    max_window: 8,
                    ..Default::default()
                },
                read_ahead: 9,
                grow_read_ahead_to: 0,
            },
            on_open(open_tx),
        );
        // Open, the first read, and the two reads the window grew to.
        let parked = eventually(Duration::from_secs(5), || {
            let s = engine.stats();
            s.ops >= 4 && s.ops == s.completions
        })
        .await;
        assert!(
            parked,
            "{choice:?}: the pump did not fill up: {:?}",
            engine.stats()
        );
        tokio::time::timeout(Duration::from_secs(5), engine.shutdown())
            .await
            .unwrap_or_else(|_| panic!("{choice:?}: shutdown hung behind a paused pump"));
        assert_nothing_pending(&engine).await;
        // The pump stays parked until the runtime goes; its reads are done,
        // so its descriptor may be closed.
        let fd = open_rx.try_recv().expect("on_open").expect("open");
        // SAFETY: the paused pump never closes fd (it is parked for good).
        assert_eq!(unsafe { libc::close(fd) }, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_reports_backend_and_fallback_reason() {
    let _gate = FD_GATE.read().await;
    let engine = start(Choice::Fallback);
    assert_eq!(engine.backend().name(), "fallback");
    assert!(engine.fallback_reason().is_some());
    engine.shutdown().await;
    if HAS_URING {
        let engine = start(Choice::IoUring);
        assert_eq!(engine.backend().name(), "io_uring");
        assert_eq!(engine.fallback_reason(), None);
        engine.shutdown().await;
    } else {
        // A build without the io_uring backend refuses to pretend.
        let err = Engine::start(Choice::IoUring)
            .err()
            .expect("no io_uring in this build");
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        let engine = start(Choice::Auto);
        assert!(engine
            .fallback_reason()
            .is_some_and(|r| r.contains("no io_uring backend")));
        engine.shutdown().await;
    }
}
