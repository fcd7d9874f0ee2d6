//! Whole files: one read sized from the file's metadata, a large file in
//! parts, a small file in one linked chain.

pub mod files;
pub mod read_parts;
