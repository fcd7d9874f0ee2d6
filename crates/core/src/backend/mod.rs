//! The two backends behind [`crate::Engine`]: io_uring on tokio, and the
//! same operations as positional system calls on worker threads.

pub(crate) mod fallback;
#[cfg(all(target_os = "linux", feature = "io-uring"))]
pub(crate) mod uring;
