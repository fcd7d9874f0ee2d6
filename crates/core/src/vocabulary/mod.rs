//! The ground floor: the vocabulary the backends and the features share.
//! Nothing here calls the engine or a backend, so every floor above can use
//! it without an import cycle (`scripts/import-cycles.js` checks).

mod contents;
mod path_stat;
mod position;
mod write_plan;

pub use contents::Contents;
#[cfg(target_os = "linux")]
pub(crate) use path_stat::{statx_flags, STATX_MASK};
pub use path_stat::{PathStat, Timespec};
pub use position::CURRENT_POSITION;
#[cfg(all(target_os = "linux", feature = "io-uring"))]
pub(crate) use write_plan::Chain;
pub(crate) use write_plan::{cut_groups, Cursor, Group, Plan};
pub use write_plan::{SyncMode, WriteOutcome, IOV_MAX};
