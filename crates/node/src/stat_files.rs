//! Binding of `uring_fs_core::batch::stat_files`: many paths' metadata in one
//! crossing, as one `Float64Array` in the layout of [`StatSlot`] that
//! `lib/stat-files.ts` turns into `fs.Stats` objects (creating the objects
//! here, field by field through napi, would cost more than the statx calls
//! themselves).

use std::ffi::CString;

use napi::bindgen_prelude::{Buffer, Float64Array, Object};
use napi::{Env, Result};
use napi_derive::napi;
use uring_fs_core::batch::stat_files;
use uring_fs_core::{PathStat, Timespec};

use crate::engine::global;
use crate::errors::neg_errno;
use crate::file_ops::{c_path, promise};
use crate::layouts::StatSlot;

/// Numbers per path.
const FIELDS: usize = StatSlot::Count as usize;

fn fill_stat(out: &mut [f64], s: &PathStat) {
    // Doubles, as Node stores them (precision beyond 2^53 is lost there too).
    let mut set = |slot: StatSlot, v: f64| out[slot as usize] = v;
    let mut time = |sec: StatSlot, nsec: StatSlot, t: Timespec| {
        set(sec, t.sec as f64);
        set(nsec, f64::from(t.nsec));
    };
    time(StatSlot::AtimeSec, StatSlot::AtimeNsec, s.atime);
    time(StatSlot::MtimeSec, StatSlot::MtimeNsec, s.mtime);
    time(StatSlot::CtimeSec, StatSlot::CtimeNsec, s.ctime);
    time(StatSlot::BirthtimeSec, StatSlot::BirthtimeNsec, s.birthtime);
    set(StatSlot::Dev, s.dev as f64);
    set(StatSlot::Mode, f64::from(s.mode));
    set(StatSlot::Nlink, s.nlink as f64);
    set(StatSlot::Uid, f64::from(s.uid));
    set(StatSlot::Gid, f64::from(s.gid));
    set(StatSlot::Rdev, s.rdev as f64);
    set(StatSlot::Blksize, s.blksize as f64);
    set(StatSlot::Ino, s.ino as f64);
    set(StatSlot::Size, s.size as f64);
    set(StatSlot::Blocks, s.blocks as f64);
}

/// `stat(2)` (`follow`) or `lstat(2)` of every path, at most `concurrency`
/// at a time. Resolves once with a `Float64Array` of `paths.length *
/// (StatSlot.Count + 1)` numbers: first [`StatSlot`]'s per path, then one per
/// path, 0 or the `-errno` of that path's failure (its stat numbers are
/// then 0).
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
                Err(e) => *errno = f64::from(neg_errno(e)),
            }
        }
        Float64Array::new(out)
    })
}
