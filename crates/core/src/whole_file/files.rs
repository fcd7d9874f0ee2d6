//! Whole-file helpers: read a file into one buffer sized from its metadata,
//! write one from a batch of chunks.
//!
//! `fs.promises.readFile` costs an open, an fstat, reads and a close, each a
//! thread-pool round trip, into a fresh buffer whose every page faults on
//! first touch. Here the whole sequence runs on the engine's runtime with one
//! crossing back to the caller, into pool memory advised for huge pages.

use std::ffi::CString;
use std::io;
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::batch::read_lanes;
use crate::buffer_pool::PoolBuf;
use crate::engine::Engine;
use crate::op_error::{OpError, Syscall};
use crate::stream::batch_writer;
use crate::vocabulary::{Contents, SyncMode, CURRENT_POSITION};
use crate::whole_file::read_parts;
use crate::write_source::WriteSource;

/// Step for files whose size the metadata does not tell (procfs, pipes).
const UNKNOWN_SIZE_STEP: usize = 64 * 1024;

fn err(syscall: Syscall, error: io::Error) -> OpError {
    OpError { syscall, error }
}

/// Reads the file at `path` (opened with `flags`) whole. A regular file is
/// read up to the size `fstat` reports (fewer bytes if it shrinks meanwhile,
/// as fs does); anything else is read until EOF. A regular file of more than
/// `max_len` bytes is refused with EFBIG (syscall fstat) before any read:
/// the caller's buffers cannot hold it, so reading it would be wasted work.
pub async fn read_file(
    engine: &Engine,
    path: CString,
    flags: i32,
    max_len: u64,
) -> Result<PoolBuf, OpError> {
    let fd = engine
        .open(path, flags, 0o666)
        .await
        .map_err(|e| err(Syscall::Open, e))?;
    let res = read_fd(engine, fd, max_len).await;
    let closed = engine.close(fd).await;
    let buf = res?;
    closed.map_err(|e| err(Syscall::Close, e))?;
    Ok(buf)
}

/// What [`read_file_or_open`] found.
pub enum Opened {
    /// The file, read whole.
    Read(PoolBuf),
    /// A regular file of at least [`read_parts::PARTS_MIN`] bytes, left open
    /// for the caller to read into memory of its own
    /// ([`read_parts::read_whole`]) and then close.
    Large { fd: i32, size: u64 },
}

/// As [`read_file`], except that a large regular file is only opened: its
/// memory is better allocated by the caller (for Node, by V8, which then
/// collects earlier buffers before the new one is faulted in).
pub async fn read_file_or_open(
    engine: &Engine,
    path: CString,
    flags: i32,
) -> Result<Opened, OpError> {
    let fd = engine
        .open(path, flags, 0o666)
        .await
        .map_err(|e| err(Syscall::Open, e))?;
    let res = match engine.fstat(fd).await {
        Ok(st) if st.is_regular() && st.size >= read_parts::PARTS_MIN as u64 => {
            return Ok(Opened::Large { fd, size: st.size });
        }
        // Below PARTS_MIN: no size limit can apply.
        Ok(_) => read_fd(engine, fd, u64::MAX).await,
        Err(e) => Err(err(Syscall::Fstat, e)),
    };
    let closed = engine.close(fd).await;
    let buf = res?;
    closed.map_err(|e| err(Syscall::Close, e))?;
    Ok(Opened::Read(buf))
}

async fn read_fd(engine: &Engine, fd: i32, max_len: u64) -> Result<PoolBuf, OpError> {
    let st = engine.fstat(fd).await.map_err(|e| err(Syscall::Fstat, e))?;
    if st.is_regular() && st.size > max_len {
        return Err(err(
            Syscall::Fstat,
            io::Error::from_raw_os_error(libc::EFBIG),
        ));
    }
    if st.is_regular() && st.size > 0 {
        let size = usize::try_from(st.size)
            .map_err(|_| err(Syscall::Read, io::Error::from_raw_os_error(libc::EFBIG)))?;
        let mut buf = PoolBuf::with_capacity(size);
        if size >= read_parts::PARTS_MIN {
            let target = read_parts::ReadTarget::from_pool(buf);
            let (res, target) = read_parts::read_whole(engine, fd, target, size).await;
            let Some(mut whole) = target.into_pool() else {
                return Err(err(Syscall::Read, io::Error::other("read target lost")));
            };
            let n = res.map_err(|e| err(Syscall::Read, e))?;
            // SAFETY: read_whole filled the first n bytes.
            unsafe { whole.set_len(n) };
            return Ok(whole);
        }
        while buf.len() < size {
            let at = buf.len() as u64;
            let (res, b) = engine.read_at(fd, buf, at, size - at as usize).await;
            buf = b;
            match res {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(err(Syscall::Read, e)),
            }
        }
        return Ok(buf);
    }
    // Unknown size: read steps until EOF, then gather them in one buffer.
    match read_steps(engine, fd, false).await? {
        Some(whole) => Ok(whole),
        None => Ok(read_steps(engine, fd, true)
            .await?
            .unwrap_or_else(|| PoolBuf::with_capacity(1))),
    }
}

/// Reads `fd` in steps of UNKNOWN_SIZE_STEP until EOF: at offsets from 0,
/// or, `sequential`, at the descriptor's position (pipes, character
/// devices). `None`: the first offset read failed with ESPIPE (no
/// offsets): read sequentially instead.
async fn read_steps(
    engine: &Engine,
    fd: i32,
    sequential: bool,
) -> Result<Option<PoolBuf>, OpError> {
    let mut parts: Vec<PoolBuf> = Vec::new();
    let mut total = 0usize;
    loop {
        let buf = PoolBuf::with_capacity(UNKNOWN_SIZE_STEP);
        let at = if sequential {
            CURRENT_POSITION
        } else {
            total as u64
        };
        let (res, buf) = engine.read_at(fd, buf, at, UNKNOWN_SIZE_STEP).await;
        match res {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                parts.push(buf);
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESPIPE) && total == 0 && !sequential => {
                return Ok(None);
            }
            Err(e) => return Err(err(Syscall::Read, e)),
        }
    }
    Ok(Some(concat(&parts, total)))
}

fn concat(parts: &[PoolBuf], total: usize) -> PoolBuf {
    let mut out = PoolBuf::with_capacity(total.max(1));
    let mut at = 0usize;
    for p in parts {
        // SAFETY: `out` has capacity for `total` bytes, the sum of the
        // parts' lengths, and does not overlap any part.
        unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), out.as_mut_ptr().add(at), p.len()) };
        at += p.len();
    }
    // SAFETY: the first `total` bytes were written just above.
    unsafe { out.set_len(total) };
    out
}

/// Writes `src` as the whole content of the file at `path` (opened with
/// `flags` and `mode`: fs's 'w' truncates, 'a' appends), fsyncs it when
/// `flush`, and closes it. One batch: the chunks go to the kernel as linked
/// writes in a single submission.
pub async fn write_file(
    engine: &Engine,
    path: CString,
    flags: i32,
    mode: u32,
    src: WriteSource,
    flush: bool,
) -> Result<(), OpError> {
    let fd = engine
        .open(path, flags, mode)
        .await
        .map_err(|e| err(Syscall::Open, e))?;
    let total = src.len();
    let sync = if flush {
        SyncMode::Full
    } else {
        SyncMode::None
    };
    // At the current position: 0 after a truncating open, the end with
    // O_APPEND, which is where fs.writeFile writes too.
    let out = batch_writer::write_all(engine, fd, src, CURRENT_POSITION, sync).await;
    let closed = engine.close(fd).await;
    if let Some(e) = out.error {
        // Everything written and still an error: the sync failed.
        let syscall = if out.written == total {
            Syscall::Fsync
        } else {
            Syscall::Write
        };
        return Err(err(syscall, e));
    }
    closed.map_err(|e| err(Syscall::Close, e))
}

/// What [`read_files`] read.
pub struct FilesRead {
    /// The blocks small files are packed into.
    pub blocks: Vec<PoolBuf>,
    /// Per path, in order: its contents or its error.
    pub files: Vec<Result<Contents, OpError>>,
}

impl FilesRead {
    /// The contents of file `i`, if it was read.
    pub fn bytes(&self, i: usize) -> Option<&[u8]> {
        match self.files.get(i)? {
            Ok(Contents::Packed { block, offset, len }) => {
                self.blocks.get(*block)?.get(*offset..offset + len)
            }
            Ok(Contents::Own(buf)) => Some(&buf[..]),
            Err(_) => None,
        }
    }
}

/// Reads many whole files at once; results are in the order of `paths`,
/// and one file's failure never fails the others. At most `concurrency`
/// files are in flight.
///
/// A list of [`read_lanes::FILES_PER_LANE`] files or more goes to the lanes
/// (blocking threads, each with its own ring or system calls, every core
/// at work; small contents packed into shared blocks); a shorter one is a
/// task per file on the engine (one linked chain each, sharing the
/// engine's submissions). Files too large for one read, or not readable at
/// an offset, then take the general path: open -> fstat -> reads -> close
/// on the engine. A regular file of more than `max_len` bytes fails with
/// EFBIG before any read, as in [`read_file`].
pub async fn read_files(
    engine: &Engine,
    paths: Vec<CString>,
    flags: i32,
    concurrency: usize,
    max_len: u64,
) -> FilesRead {
    let total = paths.len();
    let concurrency = concurrency.max(1);
    let paths = Arc::new(paths);
    let (blocks, mut out, try_small) = if total >= read_lanes::FILES_PER_LANE {
        let read = read_lanes::read_small_batch(engine, paths.clone(), flags, concurrency).await;
        (read.blocks, read.files, false)
    } else {
        (Vec::new(), (0..total).map(|_| None).collect(), true)
    };
    let mut pending = (0..total)
        .filter(|&i| out[i].is_none())
        .collect::<Vec<_>>()
        .into_iter();
    let mut running = JoinSet::new();
    let spawn_next = |running: &mut JoinSet<(usize, Result<PoolBuf, OpError>)>,
                      pending: &mut std::vec::IntoIter<usize>| {
        if let Some(i) = pending.next() {
            let engine = engine.clone();
            let path = paths[i].clone();
            running.spawn(async move {
                let small = match try_small {
                    true => engine.read_small(&path, flags).await,
                    false => None,
                };
                let res = match small {
                    Some(res) => res,
                    None => read_file(&engine, path, flags, max_len).await,
                };
                (i, res)
            });
        }
    };
    for _ in 0..concurrency {
        spawn_next(&mut running, &mut pending);
    }
    while let Some(joined) = running.join_next().await {
        // A panicking read leaves its slot None, reported below.
        if let Ok((i, res)) = joined {
            out[i] = Some(res.map(Contents::Own));
        }
        spawn_next(&mut running, &mut pending);
    }
    let files = out
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(err(
                    Syscall::Read,
                    io::Error::other("uring-fs: internal error (panic)"),
                ))
            })
        })
        .collect();
    FilesRead { blocks, files }
}
