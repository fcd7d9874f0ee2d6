//! The napi-rs binding of uring-fs. Thin by design: it converts JS values to
//! core types and core results back (OS failures cross as negative errno
//! numbers, which `lib/errors.ts` turns into Node's own errors), and holds no
//! I/O logic of its own.

// napi-derive registers exports only outside `cfg(test)`; the test build
// would otherwise call them dead.
#![cfg_attr(test, allow(dead_code))]

mod engine;
mod errors;
mod file_ops;
mod latin1;
mod layouts;
mod lent;
#[cfg(all(target_os = "linux", feature = "io-uring"))]
mod loop_ops;
mod open_file_cache;
mod read_files;
mod read_stream;
mod runtime_info;
mod send_file;
mod stat_files;
mod write_files;
mod writer;
