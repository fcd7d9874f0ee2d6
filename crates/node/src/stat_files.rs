//! Binding of `uring_fs_core::batch::stat_files`: many paths' metadata in one
//! crossing, as one `Float64Array` that `lib/stat-files.ts` turns into
//! `fs.Stats` objects (creating the objects here, field by field through
//! napi, would cost more than the statx calls themselves).

use std::ffi::CString;

use napi::bindgen_prelude::{Buffer, Float64Array, Object};
use napi::{Env, Result};
use napi_derive::napi;
use uring_fs_core::batch::stat_files;
use uring_fs_core::{PathStat, Timespec};

use crate::engine::global;
use crate::file_ops::{c_path, promise};

/// Numbers per path, in the order of Node's own stat array (`dev, mode,
/// nlink, uid, gid, rdev, blksize, ino, size, blocks`, then seconds and
/// nanoseconds of atime, mtime, ctime, birthtime).
const FIELDS: usize = 18;

fn fill_stat(out: &mut [f64], s: &PathStat) {
    let time = |t: Timespec| [t.sec as f64, f64::from(t.nsec)];
    let [a0, a1] = time(s.atime);
    let [m0, m1] = time(s.mtime);
    let [c0, c1] = time(s.ctime);
    let [b0, b1] = time(s.birthtime);
    // Doubles, as Node stores them (precision beyond 2^53 is lost there too).
    out.copy_from_slice(&[
        s.dev as f64,
        f64::from(s.mode),
        s.nlink as f64,
        f64::from(s.uid),
        f64::from(s.gid),
        s.rdev as f64,
        s.blksize as f64,
        s.ino as f64,
        s.size as f64,
        s.blocks as f64,
        a0,
        a1,
        m0,
        m1,
        c0,
        c1,
        b0,
        b1,
    ]);
}

/// `stat(2)` (`follow`) or `lstat(2)` of every path, at most `concurrency`
/// at a time. Resolves once with a `Float64Array` of `paths.length * 19`
/// numbers: first 18 per path (Node's stat array order), then one per path,
/// 0 or the `-errno` of that path's failure (its stat numbers are then 0).
#[napi(catch_unwind, ts_return_type = "Promise<Float64Array>")]
pub fn stat_files<'env>(
    env: &'env Env,
    paths: Vec<Buffer>,
    follow: bool,
    concurrency: u32,
) -> Result<Object<'env>> {
    let paths = paths
        .iter()
        .map(|p| c_path(p))
        .collect::<Result<Vec<CString>>>()?;
    let engine = global()?.engine.clone();
    promise(env, async move {
        let results = stat_files::stat_files(&engine, paths, follow, concurrency as usize).await;
        let n = results.len();
        let mut out = vec![0f64; n * (FIELDS + 1)];
        let (stats, errnos) = out.split_at_mut(n * FIELDS);
        for ((res, slot), errno) in results
            .iter()
            .zip(stats.chunks_exact_mut(FIELDS))
            .zip(errnos.iter_mut())
        {
            match res {
                Ok(s) => fill_stat(slot, s),
                Err(e) => *errno = f64::from(-e.raw_os_error().unwrap_or(libc::EIO)),
            }
        }
        Float64Array::new(out)
    })
}
