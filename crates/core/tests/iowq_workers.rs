//! The ring's io-wq workers: at most one per core runs its large reads
//! (`driver::cap_iowq_workers`).

#![cfg(target_os = "linux")]
// Test helpers may unwrap and expect: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{random_bytes, rng, start, HAS_URING};

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use uring_fs_core::{Choice, Engine, PoolBuf};

const MIB: usize = 1 << 20;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// io-wq workers of the thread `tid` (they are named `iou-wrk-<tid>`).
fn workers_of(tid: i32) -> usize {
    let name = format!("iou-wrk-{tid}");
    std::fs::read_dir("/proc/self/task")
        .expect("list /proc/self/task")
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

async fn read_mib(engine: &Engine, fd: i32, offset: u64) -> std::io::Result<usize> {
    let (res, _buf) = engine
        .read_at(fd, PoolBuf::with_capacity(MIB), offset, MIB)
        .await;
    res
}

// As in the addon: the engine starts on this thread, and its driver task
// submits from the runtime's one worker thread, whose workers are the ring's.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn large_reads_run_on_at_most_one_worker_per_core() {
    if !HAS_URING {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = rng("large_reads_run_on_at_most_one_worker_per_core");
    let p = dir.path().join("f");
    let want = random_bytes(&mut rng, 16 * MIB);
    std::fs::write(&p, &want).expect("write");
    let file = std::fs::File::open(&p).expect("open");
    // Written back, so that its pages can be dropped from the cache.
    file.sync_all().expect("fsync");
    let engine = start(Choice::IoUring);
    let tid = tokio::spawn(async { gettid() }).await.expect("worker tid");

    // Count the workers while the reads run, from another thread.
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, most) = (stop.clone(), most.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                most.fetch_max(workers_of(tid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    // Far more large reads at once than cores, of a file dropped from the
    // cache: each worker waits for the disk, and uncapped the kernel starts
    // another for the reads queued behind it (one per read, up to 20 seen
    // on two cores; on tmpfs nothing waits, and one or two suffice).
    let at_once = 4 * cores() + 4;
    let fd = file.as_raw_fd();
    for _ in 0..10 {
        // SAFETY: fadvise takes no pointers; fd is open.
        let rc = unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise");
        let reads: Vec<_> = (0..at_once)
            .map(|i| {
                let engine = engine.clone();
                tokio::spawn(async move { read_mib(&engine, fd, ((i % 16) * MIB) as u64).await })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.expect("join").expect("read"), MIB);
        }
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let most = most.load(Ordering::Relaxed);
    assert!(
        most >= 1,
        "no io-wq worker seen: the reads did not go to io-wq"
    );
    assert!(
        most <= cores(),
        "{most} io-wq workers at once for {} cores",
        cores()
    );
    engine.shutdown().await;
}
