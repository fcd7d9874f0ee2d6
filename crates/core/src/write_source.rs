//! The memory a write reads from, and what keeps it alive.
//!
//! The kernel (or a pool thread) reads the bytes after the caller's future
//! may have been dropped, so a write never borrows: it owns a `WriteSource`,
//! whose `owner` keeps every part valid and in place until the last system
//! call or CQE that names them is done. The napi layer wraps JS Buffers in
//! one (held by reference, never copied); Rust callers hand over `Vec`s.

use std::any::Any;
use std::fmt;

/// Bytes to write: `parts` in order, kept alive by `owner`.
pub struct WriteSource {
    /// Keeps the memory of every part valid and unmoved while it lives.
    owner: Box<dyn Any + Send>,
    /// `(address, length)` of each part, in write order. Addresses are kept
    /// as integers: the memory belongs to `owner`, and plain integers keep
    /// the type `Send` without claiming anything about that memory.
    parts: Vec<(usize, usize)>,
}

impl WriteSource {
    /// The concatenation of `vecs`. The vectors move into the source; their
    /// heap blocks do not move with them, so the addresses taken here stay
    /// valid for as long as the source lives.
    pub fn from_vecs(vecs: Vec<Vec<u8>>) -> WriteSource {
        let parts = vecs
            .iter()
            .map(|v| (v.as_ptr() as usize, v.len()))
            .collect();
        WriteSource {
            owner: Box::new(vecs),
            parts,
        }
    }

    /// The concatenation of `parts`, each `(pointer, length)`.
    ///
    /// # Safety
    ///
    /// For as long as `owner` lives, each part must be `length` bytes of
    /// initialized memory that stays allocated, readable and at the same
    /// address. Writes read the parts from other threads and from the kernel
    /// at any time until the write that uses them has completed (or, if its
    /// future is dropped, until the kernel has returned the request).
    pub unsafe fn from_parts(
        owner: Box<dyn Any + Send>,
        parts: Vec<(*const u8, usize)>,
    ) -> WriteSource {
        WriteSource {
            owner,
            parts: parts.into_iter().map(|(p, n)| (p as usize, n)).collect(),
        }
    }

    /// A source with nothing to write.
    pub fn empty() -> WriteSource {
        WriteSource::from_vecs(Vec::new())
    }

    /// Total bytes over all parts.
    pub fn len(&self) -> u64 {
        self.parts.iter().map(|&(_, n)| n as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|&(_, n)| n == 0)
    }

    /// Number of parts, empty ones included.
    pub fn parts_len(&self) -> usize {
        self.parts.len()
    }

    /// Gives the owner back (e.g. to downcast it and reuse the buffers).
    pub fn into_owner(self) -> Box<dyn Any + Send> {
        self.owner
    }

    pub(crate) fn parts(&self) -> &[(usize, usize)] {
        &self.parts
    }
}

impl Default for WriteSource {
    fn default() -> Self {
        WriteSource::empty()
    }
}

impl fmt::Debug for WriteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteSource")
            .field("parts", &self.parts.len())
            .field("len", &self.len())
            .finish()
    }
}

/// An iovec array naming (pieces of) a `WriteSource`'s parts: what one
/// `writev`/`pwritev`/`IORING_OP_WRITEV` reads. Whoever hands it to the
/// kernel also holds the source it points into until the call is over.
pub(crate) struct IoVecs(pub(crate) Vec<libc::iovec>);

// SAFETY: the raw pointers in the iovecs are only addresses of memory owned
// by a WriteSource (which is Send) and are only read through by the kernel
// or by a system call made on whichever thread holds the array; nothing in
// the array is tied to the thread that built it.
unsafe impl Send for IoVecs {}
