//! Response bodies: a file opened beneath a served root ([`served_file`]),
//! and its bytes sent to a socket: zero-copy through the engine
//! ([`crate::Engine::send_body`]), or inline on the caller's thread when
//! that cannot wait for a disk ([`send_inline`]). The request and outcome
//! types are the ground floor's ([`crate::vocabulary::send_body`]).

pub mod open_file_cache;
pub mod served_file;

/// Sends what it can of `head` then `len` bytes of `file` from `offset`
/// (at most `budget` of them) without blocking, on the calling thread.
/// Sends nothing when the range is not all in the page cache or the system
/// cannot tell. `error` set: the connection (or the file) failed. The
/// rest goes through [`crate::Engine::send_body`].
pub use crate::engine::send_inline;

/// Sends what it can of `head` then `body` (bytes in memory) without
/// blocking, on the calling thread; the caller writes the rest.
pub use crate::engine::send_bytes_inline;
