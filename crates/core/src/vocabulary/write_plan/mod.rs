//! The plan of a whole write, shared by both backends: the source cut into
//! writes of at most [`IOV_MAX`] iovecs and [`MAX_WRITE_BYTES`] bytes,
//! chained (each starting only once the one before wrote everything), with
//! the sync at the end; how far it got; and what it reports. The backends
//! differ only in how they run a chain: linked SQEs in one submission
//! (`uring::writev`, `uring::loop_ring`) or one system call at a time
//! (`fallback`). See [`crate::stream::batch_writer`] for the whole story.

use std::io;

use crate::vocabulary::CURRENT_POSITION;
use crate::write_source::{IoVecs, WriteSource};

/// Most iovecs in one write (Linux's `UIO_MAXIOV`; more is EINVAL).
pub const IOV_MAX: usize = 1024;

/// Most bytes in one write. Linux silently cuts a single write at
/// `MAX_RW_COUNT` (2 GiB minus a page) and a CQE's result is an `i32`; a
/// cap well below both keeps every full write reporting its whole length,
/// so a cut never breaks a link chain.
pub(crate) const MAX_WRITE_BYTES: usize = 1 << 30;

/// A write that returns 0 with bytes left is retried this many times before
/// the writer gives up (a descriptor that accepts nothing would otherwise
/// spin forever).
pub(crate) const MAX_ZERO_RETRIES: u32 = 5;

/// Whether, and how, to flush the file after writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    None,
    /// `fdatasync(2)`.
    Data,
    /// `fsync(2)`.
    Full,
}

impl SyncMode {
    /// `Some(datasync)` when a sync is wanted.
    pub(crate) fn datasync(self) -> Option<bool> {
        match self {
            SyncMode::None => None,
            SyncMode::Data => Some(true),
            SyncMode::Full => Some(false),
        }
    }
}

/// What a whole write did ([`crate::stream::batch_writer::write_all`], a loop ring's
/// write).
#[derive(Debug)]
pub struct WriteOutcome {
    /// Bytes of the source, from its start, that are in the file. With an
    /// error this is the prefix written before it; without, the whole source.
    pub written: u64,
    /// Why the write stopped early (or why the sync failed), if it did.
    pub error: Option<io::Error>,
    /// The source, handed back so the caller can release (or reuse) it now
    /// that nothing reads from it.
    pub source: WriteSource,
}

/// A position inside a source's parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    part: usize,
    /// Bytes of `part` already covered.
    within: usize,
}

impl Cursor {
    /// Moves past parts with nothing left (empty ones, or fully covered).
    fn skip_done(&mut self, parts: &[(usize, usize)]) {
        while self.part < parts.len() && self.within == parts[self.part].1 {
            self.part += 1;
            self.within = 0;
        }
    }

    fn at_end(mut self, parts: &[(usize, usize)]) -> bool {
        self.skip_done(parts);
        self.part == parts.len()
    }

    fn advance(&mut self, parts: &[(usize, usize)], mut n: u64) {
        while n > 0 {
            self.skip_done(parts);
            let Some(&(_, len)) = parts.get(self.part) else {
                return;
            };
            let take = ((len - self.within) as u64).min(n) as usize;
            self.within += take;
            n -= take as u64;
        }
    }
}

/// One write: iovecs naming the next bytes of the source, and where they go.
pub(crate) struct Group {
    pub(crate) iov: IoVecs,
    /// File offset, or [`CURRENT_POSITION`].
    pub(crate) offset: u64,
    /// Total bytes the iovecs name.
    pub(crate) len: u64,
}

/// Cuts up to `max` writes from `parts`, starting at `cur` and at file
/// offset `pos`, each at most [`IOV_MAX`] iovecs and [`MAX_WRITE_BYTES`]
/// bytes; empty parts are left out. Returns them and the cursor after them.
pub(crate) fn cut_groups(
    parts: &[(usize, usize)],
    mut cur: Cursor,
    mut pos: u64,
    max: usize,
) -> (Vec<Group>, Cursor) {
    let mut groups = Vec::new();
    while groups.len() < max {
        let mut iov = Vec::new();
        let mut len = 0usize;
        while iov.len() < IOV_MAX && len < MAX_WRITE_BYTES {
            cur.skip_done(parts);
            let Some(&(addr, plen)) = parts.get(cur.part) else {
                break;
            };
            let take = (plen - cur.within).min(MAX_WRITE_BYTES - len);
            iov.push(libc::iovec {
                iov_base: (addr + cur.within) as *mut libc::c_void,
                iov_len: take,
            });
            cur.within += take;
            len += take;
        }
        if iov.is_empty() {
            break;
        }
        groups.push(Group {
            iov: IoVecs(iov),
            offset: pos,
            len: len as u64,
        });
        if pos != CURRENT_POSITION {
            pos += len as u64;
        }
    }
    (groups, cur)
}

/// The next requests to issue: writes, then maybe a sync, meant to run in
/// order with each starting only if the one before fully succeeded.
pub(crate) struct Chain {
    pub(crate) groups: Vec<Group>,
    /// `Some(datasync)`: a sync follows the writes.
    pub(crate) fsync: Option<bool>,
}

impl Chain {
    /// What `Plan::settle` needs once the chain's requests (and their
    /// memory) are gone: each write's length, and whether a sync followed.
    pub(crate) fn shape(&self) -> (Vec<u64>, bool) {
        (
            self.groups.iter().map(|g| g.len).collect(),
            self.fsync.is_some(),
        )
    }
}

/// How far a `write_all` has got, shared by both backends: they differ only
/// in how they run a chain (linked SQEs in one submission, or one system
/// call at a time).
pub(crate) struct Plan {
    cur: Cursor,
    /// Where the next write goes: a file offset, or [`CURRENT_POSITION`].
    pos: u64,
    written: u64,
    /// Writes in a row that returned 0.
    zero_writes: u32,
    /// Some write wrote part (not none) of what it was given.
    short: bool,
    /// `Some(datasync)` while a requested sync has not yet succeeded.
    sync: Option<bool>,
}

impl Plan {
    pub(crate) fn new(offset: u64, sync: SyncMode) -> Plan {
        Plan {
            cur: Cursor::default(),
            pos: offset,
            written: 0,
            zero_writes: 0,
            short: false,
            sync: sync.datasync(),
        }
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Whether some write wrote part, but not all, of what it was given.
    #[allow(dead_code)] // only io_uring needs it (see uring::writev::CurPos)
    pub(crate) fn had_short_write(&self) -> bool {
        self.short
    }

    /// The next chain of at most `max` requests, or `None` when all is done.
    pub(crate) fn next_chain(&self, src: &WriteSource, max: usize) -> Option<Chain> {
        let max = max.max(1);
        let (groups, after) = cut_groups(src.parts(), self.cur, self.pos, max);
        // The sync rides at the end of the chain that writes the last bytes
        // (when there is room), so a batch plus its sync is one submission.
        let fsync = match self.sync {
            Some(datasync) if groups.len() < max && after.at_end(src.parts()) => Some(datasync),
            _ => None,
        };
        if groups.is_empty() && fsync.is_none() {
            return None;
        }
        Some(Chain { groups, fsync })
    }

    /// Takes in a chain's results (kernel style: bytes, or `-errno`), in
    /// request order; `lens` and `synced` are the chain's `shape()`.
    /// `Ok` means "carry on with `next_chain`"; an error ends the write.
    pub(crate) fn settle(
        &mut self,
        src: &WriteSource,
        lens: &[u64],
        synced: bool,
        results: &[i32],
    ) -> io::Result<()> {
        for (&len, &res) in lens.iter().zip(results) {
            if res >= 0 && res as u64 == len {
                self.progress(src, len);
                continue;
            }
            // The first write that did not finish ends the chain: the kernel
            // cancelled everything after it without running it (ECANCELED),
            // so what follows in `results` is ignored and the bytes it would
            // have written are submitted again from here.
            return match res {
                n if n > 0 => {
                    self.short = true;
                    self.progress(src, n as u64);
                    Ok(())
                }
                0 => {
                    self.zero_writes += 1;
                    if self.zero_writes > MAX_ZERO_RETRIES {
                        Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            format!(
                                "write accepted 0 bytes {} times in a row with {} left",
                                self.zero_writes,
                                src.len() - self.written
                            ),
                        ))
                    } else {
                        Ok(())
                    }
                }
                e if -e == libc::EINTR => Ok(()),
                e => Err(io::Error::from_raw_os_error(-e)),
            };
        }
        if synced {
            // Every write of the chain finished, so the sync ran.
            match results.get(lens.len()).copied() {
                Some(res) if res >= 0 => self.sync = None,
                Some(res) if -res == libc::EINTR => {}
                Some(res) => return Err(io::Error::from_raw_os_error(-res)),
                None => return Err(io::Error::from_raw_os_error(libc::EIO)),
            }
        }
        Ok(())
    }

    fn progress(&mut self, src: &WriteSource, n: u64) {
        self.cur.advance(src.parts(), n);
        self.written += n;
        self.zero_writes = 0;
        if self.pos != CURRENT_POSITION {
            self.pos += n;
        }
    }
}

#[cfg(test)]
mod tests;
