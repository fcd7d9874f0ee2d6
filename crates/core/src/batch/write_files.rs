//! Many whole files written in one call.
//!
//! `fs.promises.writeFile` in a loop costs an open, a write and a close per
//! file, each a thread-pool round trip and a crossing back to JavaScript.
//! Here each file is the same open → batch write (→ fsync) → close sequence
//! as [`files::write_file`], run on the engine's runtime for many files at
//! once, so on io_uring the SQEs of many files share each `io_uring_enter`,
//! and the caller gets every result in one go.

use std::ffi::CString;
use std::io;

use tokio::task::JoinSet;

use crate::engine::Engine;
use crate::op_error::{OpError, Syscall};
use crate::whole_file::files;
use crate::write_source::WriteSource;

/// Writes each `(path, source)` of `entries` as the whole content of the
/// file at `path`, opened with `flags` and `mode` (fs's 'w' truncates, 'a'
/// appends, 'wx' refuses an existing file), fsynced before its close when
/// `flush`: see [`files::write_file`].
///
/// At most `concurrency` files are in flight at a time (0 counts as 1).
/// Results are in the order of `entries`; one file's failure never fails
/// the others, and tells which system call failed. Each source is dropped
/// as soon as the kernel is done with it. Only `concurrency` tasks exist at
/// a time, so a long list costs its entries and results, not a task each.
pub async fn write_files(
    engine: &Engine,
    entries: Vec<(CString, WriteSource)>,
    flags: i32,
    mode: u32,
    flush: bool,
    concurrency: usize,
) -> Vec<Result<(), OpError>> {
    let total = entries.len();
    let mut out: Vec<Option<Result<(), OpError>>> = (0..total).map(|_| None).collect();
    let mut pending = entries.into_iter().enumerate();
    let mut running: JoinSet<(usize, Result<(), OpError>)> = JoinSet::new();
    let mut spawn_next = |running: &mut JoinSet<_>| {
        if let Some((i, (path, src))) = pending.next() {
            let engine = engine.clone();
            running.spawn(async move {
                let res = files::write_file(&engine, path, flags, mode, src, flush).await;
                (i, res)
            });
        }
    };
    // Never more slots than files: a huge `concurrency` costs nothing.
    for _ in 0..concurrency.clamp(1, total.max(1)) {
        spawn_next(&mut running);
    }
    while let Some(joined) = running.join_next().await {
        // A panicking write leaves its slot None, reported below.
        if let Ok((i, res)) = joined {
            out[i] = Some(res);
        }
        spawn_next(&mut running);
    }
    out.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(OpError {
                    syscall: Syscall::Write,
                    error: io::Error::other("uring-fs: internal error (panic)"),
                })
            })
        })
        .collect()
}
