//! `Engine::send_body` (file -> socket without user copies) and
//! `Engine::open_beneath` (opens confined to a directory), on every backend
//! this build has. The socket side is a real TCP connection on 127.0.0.1;
//! the reading client runs on a plain thread.

// Test helpers may unwrap and expect: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{choices, cpath, random_bytes, rng, start};

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread;
use std::time::Duration;

use uring_fs_core::{BodyRequest, Choice, Engine, SocketHandle};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A connected pair: the server side non-blocking (as Node's is).
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    server.set_nonblocking(true).expect("nonblocking");
    (server, client)
}

async fn open_ro(engine: &Engine, path: &std::path::Path) -> OwnedFd {
    let fd = engine
        .open(cpath(path), libc::O_RDONLY, 0)
        .await
        .expect("open");
    // SAFETY: the descriptor was just opened for this test and is owned by
    // nothing else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Head then a random range of a random file arrive intact, including when
/// the client reads slowly enough for the socket to fill many times.
#[test]
fn sends_head_and_ranges() {
    let mut rng = rng("sends_head_and_ranges");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = random_bytes(&mut rng, 5 * 1024 * 1024 + 123);
    let path = dir.path().join("f");
    std::fs::write(&path, &data).expect("write");
    for choice in choices() {
        let rt = runtime();
        rt.block_on(async {
            let engine = start(choice);
            // (offset, len, slow reader, dropped from the page cache first:
            // the io_uring backend then splices through a pipe instead of
            // calling sendfile on cached pages)
            let cases: [(u64, u64, bool, bool); 7] = [
                (0, 0, false, false),
                (0, 1, false, false),
                (0, data.len() as u64, false, false),
                (4095, 70_000, false, false),
                (1234, data.len() as u64 - 1234, true, false),
                (0, data.len() as u64, false, true),
                (77, data.len() as u64 - 1000, true, true),
            ];
            for (offset, len, slow, uncached) in cases {
                let (server, mut client) = pair();
                let head = format!("HEAD {offset} {len}\r\n").into_bytes();
                let expect_len = head.len() + len as usize;
                let reader = thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut buf = vec![0u8; 64 * 1024];
                    while got.len() < expect_len {
                        if slow {
                            thread::sleep(Duration::from_millis(2));
                        }
                        let n = client.read(&mut buf).expect("read");
                        assert!(n > 0, "connection closed early at {}", got.len());
                        got.extend_from_slice(&buf[..n]);
                    }
                    got
                });
                let socket = SocketHandle::dup(server.as_raw_fd()).expect("dup");
                let file = open_ro(&engine, &path).await;
                if uncached {
                    // SAFETY: posix_fadvise takes no pointers.
                    let r = unsafe {
                        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED)
                    };
                    assert_eq!(r, 0);
                }
                let ops_before = engine.stats().ops;
                let req = BodyRequest {
                    head: head.clone(),
                    file,
                    offset,
                    len,
                    stall_after: None,
                };
                let out = engine.send_body(socket, req).await;
                assert!(out.error.is_none(), "{choice:?}: {:?}", out.error);
                if uncached && choice == Choice::IoUring {
                    // Head, splice in, splice out at the least.
                    assert!(engine.stats().ops - ops_before >= 3, "{:?}", engine.stats());
                }
                assert_eq!(out.head_sent, head.len());
                assert_eq!(out.body_sent, len);
                let got = reader.join().expect("reader");
                assert_eq!(&got[..head.len()], &head[..], "{choice:?}");
                let body = &got[head.len()..];
                let want = &data[offset as usize..(offset + len) as usize];
                assert!(body == want, "{choice:?}: body differs at {offset}+{len}");
                drop(server);
            }
            engine.shutdown().await;
        });
    }
}

/// A client that stops reading does not hold the transfer forever: abort
/// ends it with an error, and the engine's duplicate is closed (the peer
/// then sees the connection end once the server's own socket closes).
#[test]
fn abort_ends_a_stalled_transfer() {
    let (_dir, data, path) = big_file("abort_ends_a_stalled_transfer");
    for choice in choices() {
        let rt = runtime();
        rt.block_on(async {
            let engine = start(choice);
            let (server, client) = pair();
            let socket = SocketHandle::dup(server.as_raw_fd()).expect("dup");
            let file = open_ro(&engine, &path).await;
            let req = BodyRequest {
                head: Vec::new(),
                file,
                offset: 0,
                len: data.len() as u64,
                stall_after: None,
            };
            let aborter = socket.clone();
            let transfer = tokio::spawn({
                let engine = engine.clone();
                async move { engine.send_body(socket, req).await }
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(
                !transfer.is_finished(),
                "{choice:?}: a stalled client cannot take 32 MiB"
            );
            aborter.abort();
            let out = tokio::time::timeout(Duration::from_secs(5), transfer)
                .await
                .expect("abort ends the transfer")
                .expect("task");
            assert!(
                out.error.is_some(),
                "{choice:?}: aborted transfer reports an error"
            );
            assert!(out.body_sent < data.len() as u64);
            drop(client);
            engine.shutdown().await;
        });
    }
}

/// With `stall_after`, a client that stops reading ends the transfer
/// `stalled`, with no error and nothing held: the file and the engine's
/// duplicate of the socket are closed. A second transfer from where the
/// first stopped, once the client reads, completes the body: every byte
/// in order. Also with the file dropped from the page cache, where io_uring
/// splices through a pipe and stalls with bytes still in it.
#[test]
fn a_stalled_transfer_ends_holding_nothing_and_resumes() {
    let (_dir, data, path) = big_file("a_stalled_transfer_ends_holding_nothing_and_resumes");
    // Written back, so that POSIX_FADV_DONTNEED can drop the pages.
    std::fs::File::open(&path)
        .and_then(|f| f.sync_all())
        .expect("sync");
    for (choice, uncached) in choices().into_iter().flat_map(|c| [(c, false), (c, true)]) {
        let rt = runtime();
        rt.block_on(async {
            let engine = start(choice);
            let (server, mut client) = pair();
            let socket = SocketHandle::dup(server.as_raw_fd()).expect("dup");
            let file = open_ro(&engine, &path).await;
            if uncached {
                // Dropped from the page cache, and no read-ahead, which
                // would soon make the rest cached (then sent by sendfile).
                for advice in [libc::POSIX_FADV_DONTNEED, libc::POSIX_FADV_RANDOM] {
                    // SAFETY: posix_fadvise takes no pointers.
                    let r = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, advice) };
                    assert_eq!(r, 0);
                }
            }
            let req = BodyRequest {
                head: b"HEAD".to_vec(),
                file,
                offset: 0,
                len: data.len() as u64,
                stall_after: Some(Duration::from_millis(100)),
            };
            let started = std::time::Instant::now();
            let out = tokio::time::timeout(Duration::from_secs(5), engine.send_body(socket, req))
                .await
                .expect("a stall ends the transfer");
            assert!(out.stalled, "{choice:?} uncached {uncached}: {out:?}");
            assert!(out.error.is_none(), "{choice:?}: {out:?}");
            assert_eq!(out.head_sent, 4, "{choice:?}");
            assert!(out.body_sent > 0 && out.body_sent < data.len() as u64);
            assert!(started.elapsed() >= Duration::from_millis(100));
            // The duplicate and the file go once the cancelled wait
            // completes: only `server` is left naming the socket, and
            // nothing names the file (other tests run alongside, so the
            // process's count would not do).
            let sock_link = fd_link(server.as_raw_fd());
            let held = || (links_to(&sock_link), links_to(&path.to_string_lossy()));
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while held() != (1, 0) && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(held(), (1, 0), "{choice:?}: descriptors held after a stall");
            // The rest, read by a client that reads again.
            let sent = out.body_sent;
            let reader = thread::spawn(move || {
                let mut got = vec![0u8; 4 + 32 * 1024 * 1024];
                client.read_exact(&mut got).expect("read");
                got
            });
            let socket = SocketHandle::dup(server.as_raw_fd()).expect("dup");
            let req = BodyRequest {
                head: Vec::new(),
                file: open_ro(&engine, &path).await,
                offset: sent,
                len: data.len() as u64 - sent,
                // A loaded machine may not run the reader for a while.
                stall_after: None,
            };
            let rest = engine.send_body(socket, req).await;
            assert!(
                rest.error.is_none() && !rest.stalled,
                "{choice:?}: {rest:?}"
            );
            assert_eq!(rest.body_sent, data.len() as u64 - sent);
            let got = reader.join().expect("reader");
            assert_eq!(&got[..4], b"HEAD");
            assert!(got[4..] == data[..], "{choice:?}: bytes differ");
            engine.shutdown().await;
        });
    }
}

/// The peer going away mid-body ends the transfer with a socket error.
#[test]
fn peer_reset_ends_the_transfer() {
    let (_dir, data, path) = big_file("peer_reset_ends_the_transfer");
    for choice in choices() {
        let rt = runtime();
        rt.block_on(async {
            let engine = start(choice);
            let (server, mut client) = pair();
            let socket = SocketHandle::dup(server.as_raw_fd()).expect("dup");
            let file = open_ro(&engine, &path).await;
            let req = BodyRequest {
                head: b"x".to_vec(),
                file,
                offset: 0,
                len: data.len() as u64,
                stall_after: None,
            };
            let closer = thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                let n = client.read(&mut buf).expect("read");
                assert!(n > 0);
                drop(client); // unread data pending: the kernel sends RST
            });
            let out = tokio::time::timeout(Duration::from_secs(10), engine.send_body(socket, req))
                .await
                .expect("a reset ends the transfer");
            closer.join().expect("closer");
            let err = out.error.expect("error reported");
            assert_eq!(err.syscall.name(), "write", "{choice:?}: {err:?}");
            assert!(
                matches!(
                    err.error.raw_os_error(),
                    Some(libc::EPIPE | libc::ECONNRESET)
                ),
                "{choice:?}: {err:?}"
            );
            drop(server);
            engine.shutdown().await;
        });
    }
}

/// A file shorter than the length asked for is reported, not padded.
#[test]
fn short_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("short");
    std::fs::write(&path, b"0123456789").expect("write");
    for choice in choices() {
        let rt = runtime();
        rt.block_on(async {
            let engine = start(choice);
            let (server, mut client) = pair();
            let socket = SocketHandle::dup(server.as_raw_fd()).expect("dup");
            let file = open_ro(&engine, &path).await;
            let req = BodyRequest {
                head: Vec::new(),
                file,
                offset: 0,
                len: 100,
                stall_after: None,
            };
            let out = engine.send_body(socket, req).await;
            assert_eq!(out.body_sent, 10, "{choice:?}");
            let err = out.error.expect("error");
            assert_eq!(err.syscall.name(), "read");
            drop(server);
            let mut got = Vec::new();
            client.read_to_end(&mut got).expect("read");
            assert_eq!(got, b"0123456789");
            engine.shutdown().await;
        });
    }
}

/// Only descriptors of stream sockets are taken.
#[test]
fn dup_refuses_non_sockets() {
    let f = std::fs::File::open("/dev/null").expect("open");
    let err = SocketHandle::dup(f.as_raw_fd()).err().expect("refused");
    assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK));
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let err = SocketHandle::dup(udp.as_raw_fd()).err().expect("refused");
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
}

/// `open_beneath` opens what lies inside the directory (symlinks included)
/// (symlinks included, absolute ones whose target is inside too) and
/// refuses, with EXDEV, every way out: `..`, absolute paths, symlinks to
/// outside, symlinked directories, magic links.
#[test]
fn open_beneath_stays_inside() {
    let top = tempfile::tempdir().expect("tempdir");
    let root = top.path().join("root");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    std::fs::write(root.join("sub/in.txt"), b"inside").expect("write");
    std::fs::write(top.path().join("secret.txt"), b"SECRET").expect("write");
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, root.join(name)).expect("symlink");
    };
    link("sub/in.txt", "ok-link");
    link("../secret.txt", "out-link");
    link("..", "up-dir");
    link("/etc", "abs-dir");
    link("/proc/self/fd/0", "magic");
    let abs_inside = root.join("sub/in.txt");
    link(abs_inside.to_str().expect("utf-8 path"), "abs-inside");
    for choice in choices() {
        let rt = runtime();
        rt.block_on(async {
            let engine = start(choice);
            let dirfd = engine
                .open(cpath(&root), libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .await
                .expect("open root");
            let open = |p: &str| {
                let engine = engine.clone();
                let p = CString::new(p).expect("cstring");
                async move { engine.open_beneath(dirfd, p, libc::O_RDONLY).await }
            };
            for ok in [
                "sub/in.txt",
                "ok-link",
                "sub/../sub/in.txt",
                "./sub/in.txt",
                "abs-inside",
            ] {
                let fd = open(ok)
                    .await
                    .unwrap_or_else(|e| panic!("{choice:?} {ok}: {e}"));
                // SAFETY: fd was just opened by this test and is owned here.
                let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
                let mut s = String::new();
                f.read_to_string(&mut s).expect("read");
                assert_eq!(s, "inside", "{choice:?} {ok}");
            }
            for bad in [
                "../secret.txt",
                "sub/../../secret.txt",
                "/etc/passwd",
                "out-link",
                "up-dir/secret.txt",
                "abs-dir/passwd",
                "magic",
            ] {
                let err = open(bad)
                    .await
                    .err()
                    .unwrap_or_else(|| panic!("{choice:?}: {bad} opened"));
                assert_eq!(
                    err.raw_os_error(),
                    Some(libc::EXDEV),
                    "{choice:?} {bad}: {err}"
                );
            }
            let missing = open("nope").await.expect_err("missing");
            assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
            engine.close(dirfd).await.expect("close");
            engine.shutdown().await;
        });
    }
    let _ = std::io::stdout().flush();
}

/// `send_inline` sends a cached range without blocking, stops (without an
/// error) where the socket is full, and sends nothing for a file range not
/// in the page cache.
#[test]
fn send_inline_sends_cached_ranges_only() {
    use uring_fs_core::http::send_inline;
    let mut rng = rng("send_inline_sends_cached_ranges_only");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = random_bytes(&mut rng, 8 * 1024 * 1024);
    let path = dir.path().join("f");
    std::fs::write(&path, &data).expect("write");
    let file = std::fs::File::open(&path).expect("open");
    let _ = std::fs::read(&path).expect("read into the cache");

    // Without cachestat (Linux before 6.5, or valgrind, which does not
    // know the call) nothing is known to be cached: nothing is sent inline.
    if !has_cachestat(file.as_raw_fd()) {
        let (server, _client) = pair();
        let out = send_inline(
            server.as_raw_fd(),
            b"HEAD",
            file.as_raw_fd(),
            0,
            5000,
            1 << 20,
        );
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!((out.head_sent, out.body_sent), (0, 0));
        return;
    }

    // Small: all of it, head first.
    let (server, mut client) = pair();
    let out = send_inline(
        server.as_raw_fd(),
        b"HEAD",
        file.as_raw_fd(),
        100,
        5000,
        1 << 20,
    );
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!((out.head_sent, out.body_sent), (4, 5000));
    let mut got = vec![0u8; 5004];
    client.read_exact(&mut got).expect("read");
    assert_eq!(&got[..4], b"HEAD");
    assert!(got[4..] == data[100..5100]);

    // Larger than the socket takes with nobody reading: a part, no error.
    let out = send_inline(
        server.as_raw_fd(),
        b"",
        file.as_raw_fd(),
        0,
        data.len() as u64,
        u64::MAX,
    );
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(
        out.body_sent > 0 && out.body_sent < data.len() as u64,
        "{}",
        out.body_sent
    );
    let mut got = vec![0u8; out.body_sent as usize];
    client.read_exact(&mut got).expect("read");
    assert!(got[..] == data[..out.body_sent as usize]);

    // The budget caps it.
    let out = send_inline(server.as_raw_fd(), b"", file.as_raw_fd(), 0, 1 << 20, 1000);
    assert_eq!(out.body_sent, 1000);
    let mut got = vec![0u8; 1000];
    client.read_exact(&mut got).expect("read");

    // Dropped from the page cache: nothing is sent.
    file.sync_all().expect("sync");
    // SAFETY: posix_fadvise takes no pointers.
    let r = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(r, 0);
    let out = send_inline(
        server.as_raw_fd(),
        b"HEAD",
        file.as_raw_fd(),
        0,
        data.len() as u64,
        1 << 20,
    );
    assert!(out.error.is_none());
    if out.head_sent != 0 {
        // The host may have kept the pages (it decides); then it all went.
        println!("pages stayed cached after DONTNEED; inline send went ahead");
    } else {
        assert_eq!(out.body_sent, 0);
    }
}

/// Whether this kernel (and whatever runs the test) has `cachestat(2)`.
fn has_cachestat(fd: std::os::fd::RawFd) -> bool {
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    let range = Range { off: 0, len: 4096 };
    let mut stat = [0u64; 5];
    // SAFETY: both pointers are valid for the kernel's reads and writes
    // (struct cachestat is five u64s) for the duration of the call.
    let r = unsafe { libc::syscall(451, fd, &range as *const Range, stat.as_mut_ptr(), 0) };
    r == 0
}

/// What descriptor `fd` of this process refers to (`socket:[N]`, a path).
fn fd_link(fd: std::os::fd::RawFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// How many of this process's descriptors refer to `target`.
fn links_to(target: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|p| p.to_string_lossy() == target)
                .count()
        })
        .unwrap_or(0)
}

/// A file of 32 MiB of random bytes (seeded by `test`) in a directory of
/// its own: the directory (removed when dropped), the bytes and the path.
fn big_file(test: &str) -> (tempfile::TempDir, Vec<u8>, std::path::PathBuf) {
    let mut rng = rng(test);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = random_bytes(&mut rng, 32 * 1024 * 1024);
    let path = dir.path().join("big");
    std::fs::write(&path, &data).expect("write");
    (dir, data, path)
}
