//! Streams: the read-ahead reader, its window, the pump that hands chunks
//! to the JavaScript thread, and the batch writer of write streams.

pub mod batch_writer;
pub mod pump;
pub(crate) mod read_ahead;
pub mod reader;
