//! Many files in one call: reads shared out among lanes, stats, writes.

pub(crate) mod read_lanes;
pub mod stat_files;
pub mod write_files;
