//! The ground floor: the vocabulary the backends and the features share.
//! Nothing here calls the engine or a backend, so every floor above can use
//! it without an import cycle (`scripts/core-layers.js` checks).

mod contents;
mod path_stat;
mod position;
pub(crate) mod send_body;
pub(crate) mod small_file;
mod write_plan;

pub use contents::Contents;
#[cfg(target_os = "linux")]
pub(crate) use path_stat::{statx_flags, STATX_MASK};
pub use path_stat::{PathStat, Timespec};
pub use position::CURRENT_POSITION;
pub use send_body::{BodyRequest, SendOutcome, SocketHandle};
#[cfg(all(target_os = "linux", feature = "io-uring"))]
pub(crate) use write_plan::Chain;
pub(crate) use write_plan::{cut_groups, Cursor, Group, Plan};
pub use write_plan::{SyncMode, WriteOutcome, IOV_MAX};
