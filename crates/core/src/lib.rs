//! uring-fs-core: the engine behind the `uring-fs` npm package.
//!
//! Plain Rust, no Node. Its floors, each using only its own, the one right
//! below and the ground (`scripts/core-layers.js` checks):
//!
//! - the ground: [`vocabulary`] (positions, sync modes, the write plan,
//!   stat fields, the small-file rules, a response body's types),
//!   [`op_error`], [`fd_stat`], [`owned_fds`] (descriptors closed
//!   together when their owner goes away), [`stats`], and the memory the
//!   kernel reads or fills ([`buffer_pool`], [`write_source`]);
//! - [`backend`]: an io_uring ring driven inside tokio
//!   ([`uring`](backend::uring), Linux with the default `io-uring`
//!   feature) and a thread-pool [`fallback`](backend::fallback) with the
//!   same operations;
//! - [`Engine`], which picks one at start-up ([`Engine::start`]);
//! - the features: [`stream`] (the read-ahead [`Reader`], the [`ReadPump`]
//!   that hands its chunks to a thread outside the runtime, the batch
//!   writer), [`whole_file`], [`batch`] and [`http`].
//!
//! The crate's docs are for its maintainers and link private items: read
//! them with `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

// The ground floor.
pub mod buffer_pool;
pub mod fd_stat;
pub mod op_error;
pub mod owned_fds;
pub mod stats;
pub mod vocabulary;
pub mod write_source;
// The backends, the engine over them, and the features on top.
mod backend;
pub mod batch;
pub mod engine;
pub mod http;
pub mod stream;
pub mod whole_file;

pub use buffer_pool::PoolBuf;
pub use engine::{Backend, Choice, Engine};
#[cfg(all(target_os = "linux", feature = "io-uring"))]
pub use engine::{LoopDone, LoopRing};
pub use fd_stat::FileStat;
pub use op_error::{OpError, Syscall};
pub use owned_fds::OwnedFds;
pub use stats::Stats;
pub use stream::pump::{PumpOptions, ReadPump, Source, Taken};
pub use stream::reader::{Reader, ReaderOptions};
pub use vocabulary::{
    BodyRequest, Contents, PathStat, SendOutcome, SocketHandle, SyncMode, Timespec, WriteOutcome,
    CURRENT_POSITION, IOV_MAX,
};
pub use write_source::WriteSource;

#[cfg(all(target_os = "linux", feature = "io-uring"))]
/// Turns a kernel-style result (`>= 0`, or `-errno`) into an `io::Result`.
pub(crate) fn errno_result(res: i32) -> std::io::Result<i32> {
    if res < 0 {
        Err(std::io::Error::from_raw_os_error(-res))
    } else {
        Ok(res)
    }
}
