//! The io_uring backend: a ring on tokio ([`driver`]), one future per SQE
//! ([`op`]), and one file per operation.

mod cancel;
mod close;
pub(crate) mod driver;
mod op;
mod openat;
mod read;
mod statx;

pub use driver::Driver;
