//! Where a file read among many landed: packed into a block shared with
//! other small files, or in a buffer of its own.

use crate::buffer_pool::PoolBuf;

/// Where one file's contents are, in a [`crate::whole_file::files::FilesRead`].
pub enum Contents {
    /// `len` bytes at `offset` in `FilesRead::blocks[block]`, a block shared
    /// with other small files.
    Packed {
        block: usize,
        offset: usize,
        len: usize,
    },
    /// A buffer of its own.
    Own(PoolBuf),
}
