//! `readFiles`' lanes: a batch of small files shared out among a few
//! blocking threads, each reading whole files as fast as its core allows.
//!
//! For cached files the cost is the kernel's own work (path lookup, copy,
//! close), done on whichever thread submits it, so a batch goes only as fast
//! as the cores that submit it. Each lane is one blocking-pool thread with a
//! ring of its own on io_uring ([`crate::backend::uring::lane_ring`]: a window of
//! linked OPENAT -> READ -> CLOSE chains per `io_uring_enter`), or plain
//! system calls on the fallback backend. Lanes take the next file from a
//! shared cursor, so a lane slowed by a file that is not cached leaves the
//! rest to the others.

use std::ffi::CString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::buffer_pool::PoolBuf;
use crate::engine::{self, Backend, Engine};
use crate::op_error::OpError;
use crate::stats::Counters;
use crate::vocabulary::small_file::{LaneRead, FIRST_READ};
use crate::vocabulary::Contents;

/// Fewest files worth a lane of their own: below this the thread hand-off
/// costs more than the lane saves.
pub(crate) const FILES_PER_LANE: usize = 32;
/// Most lanes, whatever the number of cores.
const MAX_LANES: usize = 4;
/// Small files are packed end to end into shared blocks of this size
/// (see [`Packer`]).
pub(crate) const PACK_BLOCK: usize = 64 * 1024;
/// Files this large or larger get a buffer of their own.
const PACK_BELOW: usize = 16 * 1024;

/// The files of a batch read by the lanes.
pub(crate) struct LanesRead {
    /// The shared blocks that `Contents::Packed` refer to.
    pub blocks: Vec<PoolBuf>,
    /// For each file of `paths`, in order: `None` where the file needs the
    /// general path (not a small regular file, or its stat failed) or
    /// was never reached.
    pub files: Vec<Option<Result<Contents, OpError>>>,
}

/// Reads the small files among `paths` on the lanes, at most `concurrency`
/// files in flight.
pub(crate) async fn read_small_batch(
    engine: &Engine,
    paths: Arc<Vec<CString>>,
    flags: i32,
    concurrency: usize,
) -> LanesRead {
    let n = paths.len();
    let lanes = lanes_for(n, concurrency);
    let window = (concurrency / lanes).max(1);
    let cursor = Arc::new(AtomicUsize::new(0));
    let ring = engine.backend() == Backend::IoUring;
    let handles: Vec<_> = (0..lanes)
        .map(|_| {
            let (paths, cursor, counters) = (paths.clone(), cursor.clone(), engine.counters());
            tokio::task::spawn_blocking(move || {
                lane(&paths, &cursor, flags, window, ring, &counters)
            })
        })
        .collect();
    let mut out = LanesRead {
        blocks: Vec::new(),
        files: (0..n).map(|_| None).collect(),
    };
    for handle in handles {
        // A lane that panicked reported nothing: its files take the general
        // path.
        let Ok(done) = handle.await else { continue };
        let first_block = out.blocks.len();
        out.blocks.extend(done.packer.blocks);
        for (i, read) in done.files {
            out.files[i] = match read {
                Ok(Some(Contents::Packed { block, offset, len })) => Some(Ok(Contents::Packed {
                    block: first_block + block,
                    offset,
                    len,
                })),
                Ok(Some(own)) => Some(Ok(own)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            };
        }
    }
    out
}

/// What one lane read: per file its index and outcome (block numbers local
/// to the lane's packer).
struct LaneDone {
    files: Vec<(usize, Result<Option<Contents>, OpError>)>,
    packer: Packer,
}

/// One lane: files from the shared cursor until there are none left.
fn lane(
    paths: &[CString],
    cursor: &AtomicUsize,
    flags: i32,
    window: usize,
    ring: bool,
    counters: &Counters,
) -> LaneDone {
    let mut done = LaneDone {
        files: Vec::new(),
        packer: Packer::default(),
    };
    let mut next = || {
        let i = cursor.fetch_add(1, Ordering::Relaxed);
        paths.get(i).map(|p| (i, p.as_c_str()))
    };
    let mut keep = |i: usize, read: LaneRead<'_>| {
        let placed = read.map(|found| found.map(|bytes| done.packer.put(bytes)));
        done.files.push((i, placed));
    };
    if ring {
        engine::read_small_on_lane_ring(flags, window, counters, &mut next, &mut keep);
    }
    // What the ring did not take (it had none, or stopped early), with
    // system calls.
    let mut block = PoolBuf::with_capacity(FIRST_READ);
    while let Some((i, path)) = next() {
        let read = engine::read_small_blocking(path, flags, &mut block, counters);
        keep(i, read.map(|found| found.map(|_| &block[..])));
    }
    done
}

/// Packs small files' contents end to end into blocks of [`PACK_BLOCK`]
/// bytes, so that 10,000 files of 4 KiB cost 625 allocations instead of
/// 10,000 (and JavaScript 625 Buffers with finalizers: each file becomes a
/// plain view into its block). Larger files get a buffer of their own.
///
/// This is a copy (the kernel reads into the chain's block, then the bytes
/// come here), made on the lane's thread: a file's size is not known before
/// its read, and learning it first (a statx) would cost a second path
/// lookup, about 1 us, where copying 4 KiB costs about 0.2 us.
#[derive(Default)]
struct Packer {
    blocks: Vec<PoolBuf>,
}

impl Packer {
    fn put(&mut self, bytes: &[u8]) -> Contents {
        let len = bytes.len();
        if len >= PACK_BELOW {
            let mut own = PoolBuf::with_capacity(len);
            // SAFETY: `own` has room for `len` bytes and is a new block.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), own.as_mut_ptr(), len) };
            // SAFETY: those bytes were just written.
            unsafe { own.set_len(len) };
            return Contents::Own(own);
        }
        let fits = self
            .blocks
            .last()
            .is_some_and(|b| b.capacity() - b.len() >= len);
        if !fits {
            self.blocks.push(PoolBuf::with_capacity(PACK_BLOCK));
        }
        let block_index = self.blocks.len() - 1;
        let block = &mut self.blocks[block_index];
        let offset = block.len();
        // SAFETY: the block has room for `len` more bytes after its `offset`
        // filled ones (checked above, or a new block of PACK_BLOCK >= len),
        // and `bytes` is another block's.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), block.as_mut_ptr().add(offset), len)
        };
        // SAFETY: the bytes up to offset + len are now written.
        unsafe { block.set_len(offset + len) };
        Contents::Packed {
            block: block_index,
            offset,
            len,
        }
    }
}

/// As many lanes as cores (at most [`MAX_LANES`]), but no more than the
/// files fill at [`FILES_PER_LANE`] each, nor than `concurrency` allows.
fn lanes_for(files: usize, concurrency: usize) -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    cores
        .min(MAX_LANES)
        .min(files / FILES_PER_LANE)
        .min(concurrency)
        .max(1)
}
