//! `files::read_file`: whole files equal to `std::fs::read` on every backend
//! this build has, around the size where a file is read as parallel parts
//! (`read_parts::PARTS_MIN`), and no descriptor left open.

// Test helpers may unwrap and expect: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{choices, cpath, open_file_fds, random_bytes, rng, start};

use uring_fs_core::whole_file::files::read_file;
use uring_fs_core::whole_file::read_parts::{split, PARTS_MIN};

/// Both tests count the process's descriptors: one at a time.
static FD_GATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_read_in_parts_equal_std() {
    let _gate = FD_GATE.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = rng("large_files_read_in_parts_equal_std");
    let sizes = [
        PARTS_MIN - 1,
        PARTS_MIN,
        PARTS_MIN + 4097,
        PARTS_MIN + PARTS_MIN / 2 + 1,
    ];
    for choice in choices() {
        let engine = start(choice);
        let fds = open_file_fds();
        for (i, &size) in sizes.iter().enumerate() {
            let p = dir.path().join(format!("f{i}"));
            std::fs::write(&p, random_bytes(&mut rng, size)).expect("write");
            let before = engine.stats();
            let got = read_file(&engine, cpath(&p), libc::O_RDONLY, u64::MAX)
                .await
                .unwrap_or_else(|e| panic!("{choice:?} {size}: {e:?}"));
            let want = std::fs::read(&p).expect("std read");
            assert_eq!(got.len(), want.len(), "{choice:?} size {size}");
            assert!(got[..] == want[..], "{choice:?} size {size}: bytes differ");
            // Large files went as parts: more read operations than one.
            let ops = engine.stats().ops - before.ops;
            if size >= PARTS_MIN {
                assert!(
                    ops >= split(size, 2).len() as u64,
                    "{choice:?} {size}: {ops} ops"
                );
            }
            std::fs::remove_file(&p).expect("rm");
        }
        assert_eq!(open_file_fds(), fds, "{choice:?}: descriptors left open");
        engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_larger_than_max_len_is_refused_before_any_read() {
    let _gate = FD_GATE.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("big");
    // Sparse: a size far beyond what is read in this test's time.
    let f = std::fs::File::create(&p).expect("create");
    f.set_len(64 << 30).expect("set_len");
    drop(f);
    for choice in choices() {
        let engine = start(choice);
        let fds = open_file_fds();
        let before = engine.stats();
        let got = read_file(&engine, cpath(&p), libc::O_RDONLY, 1 << 20).await;
        let e = got
            .err()
            .unwrap_or_else(|| panic!("{choice:?}: read a file over max_len"));
        assert_eq!(e.error.raw_os_error(), Some(libc::EFBIG), "{choice:?}");
        // open, fstat and close only: no read was made.
        assert!(
            engine.stats().ops - before.ops <= 3,
            "{choice:?}: {:?}",
            engine.stats()
        );
        assert_eq!(open_file_fds(), fds, "{choice:?}: descriptors left open");
        engine.shutdown().await;
    }
}
