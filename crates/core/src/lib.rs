//! uring-fs-core: the engine behind the `uring-fs` npm package.
//!
//! Plain Rust, no Node: an io_uring ring driven inside tokio ([`uring`],
//! Linux with the default `io-uring` feature), a thread-pool [`fallback`]
//! with the same operations, chosen at start-up by [`Engine::start`], and on
//! top of either the read-ahead [`Reader`] and the [`ReadPump`] that hands
//! its chunks to a thread outside the runtime, and the [`batch_writer`] that
//! writes a [`WriteSource`] in linked batches. The words they share
//! (positions, write plans, stat fields) are the ground floor, [`vocabulary`].
//!
//! The crate's docs are for its maintainers and link private items: read
//! them with `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub mod batch_writer;
pub mod beneath;
pub mod buffer_pool;
pub mod engine;
mod fallback;
pub mod fd_stat;
pub mod files;
pub mod op_error;
pub mod pump;
mod read_ahead;
mod read_lanes;
pub mod read_parts;
pub mod reader;
pub mod send_body;
pub mod send_inline;
mod sendfile_body;
pub mod served_file;
mod small_file;
pub mod stat_files;
pub mod stats;
#[cfg(all(target_os = "linux", feature = "io-uring"))]
mod uring;
pub mod vocabulary;
pub mod write_files;
pub mod write_source;

pub use buffer_pool::PoolBuf;
pub use engine::{Backend, Choice, Engine};
#[cfg(all(target_os = "linux", feature = "io-uring"))]
pub use engine::{LoopDone, LoopRing};
pub use fd_stat::FileStat;
pub use op_error::{OpError, Syscall};
pub use pump::{PumpOptions, ReadPump, Source, Taken};
pub use reader::{Reader, ReaderOptions};
pub use send_body::{BodyRequest, SendOutcome, SocketHandle};
pub use stats::Stats;
pub use vocabulary::{
    Contents, PathStat, SyncMode, Timespec, WriteOutcome, CURRENT_POSITION, IOV_MAX,
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
