//! `backend()` and `stats()`.

use napi::Result;
use napi_derive::napi;

use crate::engine::global;

/// Which backend is live: 'io_uring' or 'fallback'.
#[napi(catch_unwind)]
pub fn backend() -> Result<String> {
    Ok(global()?.engine.backend().name().to_owned())
}

/// Why the fallback is in use, or null on io_uring.
#[napi(catch_unwind)]
pub fn fallback_reason() -> Result<Option<String>> {
    Ok(global()?.engine.fallback_reason().map(str::to_owned))
}

#[napi(object)]
pub struct EngineStats {
    /// Operations submitted (SQEs, or jobs on the fallback's threads).
    pub ops: f64,
    /// `io_uring_enter` calls that submitted them.
    pub enters: f64,
    pub completions: f64,
    pub bytes_read: f64,
    pub bytes_written: f64,
    /// Times the ring's driver task woke up.
    pub wakeups: f64,
    /// Buffer memory obtained from the system so far (first use faults).
    pub pool_fresh_bytes: f64,
    /// Buffer memory given back to the system so far.
    pub pool_released_bytes: f64,
    /// Buffer memory kept free for reuse now.
    pub pool_retained_bytes: f64,
}

#[napi(catch_unwind)]
pub fn stats() -> Result<EngineStats> {
    let s = global()?.engine.stats();
    let p = uring_fs_core::buffer_pool::pool_stats();
    Ok(EngineStats {
        ops: s.ops as f64,
        enters: s.enters as f64,
        completions: s.completions as f64,
        bytes_read: s.bytes as f64,
        bytes_written: s.bytes_written as f64,
        wakeups: s.wakeups as f64,
        pool_fresh_bytes: p.fresh_bytes as f64,
        pool_released_bytes: p.released_bytes as f64,
        pool_retained_bytes: p.retained_bytes as f64,
    })
}
