//! Where an I/O happens when the caller names no offset.

/// An offset meaning "the descriptor's current file position": reads are
/// then sequential (one in flight) and advance it, as `read(2)` does; this is
/// how fs streams read an `fd` given without `start` (and the only way to
/// read a pipe), and how writes without a position land (as `write(2)`).
pub const CURRENT_POSITION: u64 = u64::MAX;
