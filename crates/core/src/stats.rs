//! Counters that let callers (and tests) see batching at work.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default, Debug)]
pub struct Counters {
    ops: AtomicU64,
    enters: AtomicU64,
    completions: AtomicU64,
    bytes: AtomicU64,
    bytes_written: AtomicU64,
    wakeups: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Operations submitted (SQEs on io_uring, jobs on the fallback pool).
    pub ops: u64,
    /// `io_uring_enter` calls made to submit them (0 on the fallback).
    pub enters: u64,
    /// Operations completed.
    pub completions: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Bytes written (every byte a write call reported, short ones included).
    pub bytes_written: u64,
    /// Times the driver task woke up.
    pub wakeups: u64,
}

impl Counters {
    pub(crate) fn add_op(&self) {
        self.add_ops(1);
    }
    pub(crate) fn add_ops(&self, n: u64) {
        self.ops.fetch_add(n, Relaxed);
    }
    #[allow(dead_code)] // only the io_uring driver enters the kernel
    pub(crate) fn add_enter(&self) {
        self.enters.fetch_add(1, Relaxed);
    }
    pub(crate) fn add_completions(&self, n: u64) {
        self.completions.fetch_add(n, Relaxed);
    }
    pub(crate) fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Relaxed);
    }
    pub(crate) fn add_bytes_written(&self, n: u64) {
        self.bytes_written.fetch_add(n, Relaxed);
    }
    #[allow(dead_code)] // only the io_uring driver has a task to wake
    pub(crate) fn add_wakeup(&self) {
        self.wakeups.fetch_add(1, Relaxed);
    }
    pub fn snapshot(&self) -> Stats {
        Stats {
            ops: self.ops.load(Relaxed),
            enters: self.enters.load(Relaxed),
            completions: self.completions.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            wakeups: self.wakeups.load(Relaxed),
        }
    }
}
