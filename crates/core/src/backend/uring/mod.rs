//! The io_uring backend: a ring on tokio ([`driver`]), one future per SQE
//! ([`op`]), and one file per operation.

mod cancel;
mod close;
pub(crate) mod driver;
mod fsync;
pub(crate) mod lane_ring;
mod lifecycle;
pub mod loop_ring;
mod op;
mod openat;
mod openat2;
mod pipe_pool;
mod poll;
mod read;
mod ring_setup;
mod send;
pub(crate) mod small_file_chain;
mod splice;
mod splice_body;
mod statx;
mod statx_path;
mod writev;

pub use driver::Driver;
