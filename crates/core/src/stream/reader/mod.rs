//! The read-ahead reader: it keeps a window of positional reads in
//! flight ahead of the consumer (each at its own offset), hands chunks out in
//! file order, continues short reads until the chunk is full or the file
//! ends, and stops at `end`. The window starts at one read and doubles with
//! every full chunk, so a small file costs one read (plus the one that sees
//! EOF) while a large one soon has `max_window` reads in flight.
//!
//! The end of the file is where fs would find it: a read that returns
//! nothing ends the stream only if no chunk before it was still to be
//! handed out when it was issued, as fs issues its next read only after the
//! previous one. After a short chunk, or an empty read that was issued
//! ahead, the reads further on are dropped and one read at the end of the
//! data decides: a file that grows meanwhile is read on, as fs reads it.
//!
//! Given the file's size when it was opened ([`Reader::set_size_hint`]),
//! the window stops there: past it, one read at a time, with nothing ahead
//! of it. It finds the end (suspected, and decided as above) or that the
//! file grew (the hint is then dropped). A small file's stream then reads
//! once more than its chunks, as fs does, with nothing lent for reads that
//! would only find the end. The read at the size is still made: a file
//! whose size says less than it holds (procfs says 0) reads on.
//!
//! The reader does not own the descriptor. Whoever closes it must first call
//! [`Reader::finish`], which cancels and waits for every read in flight: a
//! read still queued against a closed, reused descriptor number would read
//! some other file or socket.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::buffer_pool::PoolBuf;
use crate::engine::Engine;
use crate::vocabulary::CURRENT_POSITION;

mod chunks;
mod finish;
mod options;

pub use options::{BufferSupply, ReaderOptions};

/// What the reader has next, in file order.
#[derive(Debug)]
pub enum Step {
    Chunk(PoolBuf),
    /// The end of the range or of the file.
    End,
    /// The file may end at this offset; nothing is in flight. Only with
    /// [`Reader::defer_end_decisions`]: the caller finds out (a read, or
    /// the file's size, taken no earlier than fs would read again) and
    /// calls [`Reader::resume`] if it does not.
    Suspect(u64),
}

type ChunkFuture = Pin<Box<dyn Future<Output = io::Result<PoolBuf>> + Send>>;

struct InFlight {
    fut: Option<ChunkFuture>,
    /// Polled at least once: its first read may be queued or in the kernel.
    started: bool,
    out: Option<io::Result<PoolBuf>>,
    want: usize,
    /// Issued with no read ahead of it: every chunk before it had been
    /// handed out, so nothing from it means the end, as for fs.
    confirms: bool,
}

pub struct Reader {
    engine: Engine,
    fd: RawFd,
    next_offset: u64,
    end: Option<u64>,
    chunk_size: usize,
    window: usize,
    max_window: usize,
    inflight: VecDeque<InFlight>,
    /// Reads past a suspected end of file, dropped: polled until the
    /// kernel returns them, their buffers then given back.
    stale: Vec<InFlight>,
    /// The file may end here (a short chunk was handed out, or a read
    /// issued ahead came back empty): the next read, issued with nothing
    /// ahead of it, decides.
    suspect: Option<u64>,
    /// A suspected end is reported as [`Step::Suspect`] and waits for
    /// [`Reader::resume`], instead of being decided by a read at once.
    defer_decisions: bool,
    /// A short chunk, held until the reads past it have come back, so
    /// that whoever gets it knows the end is suspected with nothing in
    /// flight.
    held: Option<PoolBuf>,
    /// EOF or an error was handed out: nothing more comes.
    done: bool,
    /// For `AsyncRead`: the chunk being copied out and how far.
    current: Option<(PoolBuf, usize)>,
    /// Bytes handed out so far.
    consumed: u64,
    supply: Option<Arc<dyn BufferSupply>>,
    /// The file's size when opened (positional reads only).
    size_hint: Option<u64>,
}

/// Reads `want` bytes at `offset` into one buffer, continuing short reads;
/// fewer bytes come back only at end of file. At the current position (a
/// pipe, a terminal, an fd handed over), whatever one read returns is the
/// chunk, as with fs: waiting to fill it would hold back bytes that have
/// arrived (interactive input would never show up).
async fn read_chunk(
    engine: Engine,
    fd: RawFd,
    offset: u64,
    want: usize,
    mut buf: PoolBuf,
) -> io::Result<PoolBuf> {
    if offset == CURRENT_POSITION {
        loop {
            let (res, b) = engine.read_at(fd, buf, offset, want).await;
            buf = b;
            match res {
                Ok(_) => return Ok(buf),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }
    loop {
        let filled = buf.len();
        let at = if offset == CURRENT_POSITION {
            offset
        } else {
            offset + filled as u64
        };
        let (res, b) = engine.read_at(fd, buf, at, want - filled).await;
        buf = b;
        match res {
            Ok(0) => return Ok(buf),
            Ok(_) if buf.len() >= want => return Ok(buf),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

impl Reader {
    pub fn new(engine: Engine, fd: RawFd, opts: ReaderOptions) -> Reader {
        let sequential = opts.start == CURRENT_POSITION;
        Reader {
            engine,
            fd,
            next_offset: opts.start,
            end: opts.end,
            chunk_size: opts.chunk_size.max(1),
            window: 1,
            // Reads at the current position must not overlap: one at a time.
            max_window: if sequential {
                1
            } else {
                opts.max_window.max(1)
            },
            inflight: VecDeque::new(),
            stale: Vec::new(),
            suspect: None,
            defer_decisions: false,
            held: None,
            done: false,
            current: None,
            consumed: 0,
            supply: None,
            size_hint: None,
        }
    }

    /// The file's size when opened: the window stops there (see the top of
    /// this file). Ignored for reads at the current position.
    pub fn set_size_hint(&mut self, size: u64) {
        if self.next_offset != CURRENT_POSITION {
            self.size_hint = Some(size);
            self.tell_reads_left();
        }
    }

    /// The next read would start at or past the size the file had.
    fn at_size_hint(&self) -> bool {
        matches!(self.size_hint, Some(hint) if self.next_offset >= hint)
    }

    /// Tells the supply how many reads may still start: those below the
    /// size hint (and the range's end), and the one that decides the end.
    fn tell_reads_left(&self) {
        let Some(supply) = self.supply.as_ref() else {
            return;
        };
        let left = self.size_hint.map(|hint| {
            let stop = self.end.map_or(hint, |end| end.min(hint));
            let below = stop
                .saturating_sub(self.next_offset)
                .div_ceil(self.chunk_size as u64);
            usize::try_from(below)
                .unwrap_or(usize::MAX)
                .saturating_add(1)
        });
        supply.reads_left(left);
    }

    /// Reads fill buffers from `supply` when it has one, from the pool
    /// otherwise.
    pub fn set_supply(&mut self, supply: Arc<dyn BufferSupply>) {
        self.supply = Some(supply);
        self.tell_reads_left();
    }

    /// Whether the supply lets one more read start.
    fn may_start(&self) -> bool {
        self.supply.as_ref().is_none_or(|s| s.may_start())
    }

    /// Gives a buffer nobody needs back to the supply.
    fn recycle(&self, buf: PoolBuf) {
        if let Some(s) = self.supply.as_ref() {
            s.give_back(buf);
        }
    }

    /// Tops the window up with reads for the next chunks.
    /// With `for_next`, the caller wants the next chunk: one read starts
    /// even if the supply says no, so that a miscount can slow a stream but
    /// never end it early (no read in flight means the range is done).
    fn fill_window(&mut self, for_next: bool) {
        while !self.done
            && self.inflight.len() < self.window
            && (self.may_start() || (for_next && self.inflight.is_empty()))
        {
            let sequential = self.next_offset == CURRENT_POSITION;
            let past_hint = self.at_size_hint();
            if past_hint && !self.inflight.is_empty() {
                // At or past the size the file had: one read at a time, and
                // only with nothing ahead of it.
                return;
            }
            let want = match self.end {
                // With no offset to compare, `end` counts bytes read.
                Some(end) if sequential && self.consumed >= end => return,
                Some(end) if sequential => {
                    (end - self.consumed).min(self.chunk_size as u64) as usize
                }
                Some(end) if self.next_offset >= end => return,
                Some(end) => (end - self.next_offset).min(self.chunk_size as u64) as usize,
                None => self.chunk_size,
            };
            let buf = self
                .supply
                .as_ref()
                .and_then(|s| s.take(want))
                .filter(|b| b.capacity() >= want)
                .unwrap_or_else(|| PoolBuf::with_capacity(want));
            let fut = Box::pin(read_chunk(
                self.engine.clone(),
                self.fd,
                self.next_offset,
                want,
                buf,
            ));
            if !sequential {
                self.next_offset += want as u64;
                self.tell_reads_left();
            }
            // A read at the size the file had finds the end there, unless
            // the file grew: that is for the caller to decide when fs would
            // read again (`Step::Suspect`), not now, which may be before the
            // consumer has the chunks before it. Any other read issued with
            // nothing ahead of it confirms the end, as fs's next read does.
            let confirms = self.inflight.is_empty() && !past_hint;
            self.inflight.push_back(InFlight {
                fut: Some(fut),
                started: false,
                out: None,
                want,
                confirms,
            });
        }
    }

    fn poll_inflight(&mut self, cx: &mut Context<'_>) {
        for slot in self.inflight.iter_mut() {
            if let Some(fut) = slot.fut.as_mut() {
                slot.started = true;
                if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                    slot.fut = None;
                    slot.out = Some(out);
                }
            }
        }
        let mut i = 0;
        while i < self.stale.len() {
            let slot = &mut self.stale[i];
            let back = match (slot.fut.as_mut(), slot.started) {
                (Some(fut), true) => match fut.as_mut().poll(cx) {
                    Poll::Ready(out) => Some(out.ok()),
                    Poll::Pending => None,
                },
                // Complete already, or never polled (nothing was queued).
                _ => Some(slot.out.take().and_then(|out| out.ok())),
            };
            match back {
                Some(buf) => {
                    self.stale.swap_remove(i);
                    if let Some(buf) = buf {
                        self.recycle(buf);
                    }
                }
                None => i += 1,
            }
        }
    }

    /// The file may end at `offset` (a short chunk, or an empty read issued
    /// ahead): the reads past it are dropped (kept until the kernel returns
    /// them), and reading goes on from `offset` with one read, issued with
    /// nothing ahead of it, which decides.
    fn suspect_end_at(&mut self, offset: u64) {
        self.stale.extend(self.inflight.drain(..));
        self.next_offset = offset;
        self.window = 1;
        self.suspect = Some(offset);
    }

    /// Polls every read in flight (so each has its SQE queued) and returns
    /// the next step in file order once it is known.
    pub fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Step>> {
        if self.done {
            return Poll::Ready(Ok(Step::End));
        }
        if let Some(at) = self.suspect {
            // The reads past the suspected end come back first: nothing is
            // in flight while the end is decided.
            self.poll_inflight(cx);
            if !self.stale.is_empty() {
                return Poll::Pending;
            }
            if let Some(buf) = self.held.take() {
                return Poll::Ready(Ok(Step::Chunk(buf)));
            }
            if self.defer_decisions {
                return Poll::Ready(Ok(Step::Suspect(at)));
            }
            self.suspect = None;
        }
        self.fill_window(true);
        self.poll_inflight(cx);
        let Some(head) = self.inflight.front_mut() else {
            // Nothing left to read (the range is exhausted).
            self.done = true;
            return Poll::Ready(Ok(Step::End));
        };
        let Some(out) = head.out.take() else {
            return Poll::Pending;
        };
        let want = head.want;
        let confirms = head.confirms;
        let offset = self.chunk_offset();
        self.inflight.pop_front();
        let sequential = self.next_offset == CURRENT_POSITION;
        match out {
            Ok(buf) if buf.is_empty() && (confirms || sequential) => {
                self.done = true;
                self.recycle(buf);
                Poll::Ready(Ok(Step::End))
            }
            Ok(buf) if buf.is_empty() => {
                // Issued before the chunk ahead of it was handed out: the
                // file may have grown since.
                self.recycle(buf);
                self.suspect_end_at(offset);
                self.poll_step(cx)
            }
            Ok(buf) => {
                self.consumed += buf.len() as u64;
                if matches!(self.size_hint, Some(hint) if offset + buf.len() as u64 > hint) {
                    // The file grew: read on with the whole window.
                    self.size_hint = None;
                    self.tell_reads_left();
                }
                if buf.len() < want && !sequential {
                    // End of file inside this chunk, for now: the chunk
                    // goes out once the reads past it are back.
                    self.suspect_end_at(offset + buf.len() as u64);
                    self.held = Some(buf);
                    return self.poll_step(cx);
                } else {
                    self.window = (self.window * 2).min(self.max_window);
                    self.fill_window(false);
                    // Get the new reads queued before handing the chunk out.
                    self.poll_inflight(cx);
                }
                Poll::Ready(Ok(Step::Chunk(buf)))
            }
            Err(e) => {
                self.done = true;
                Poll::Ready(Err(e))
            }
        }
    }

    /// The file offset of the next chunk to hand out (positional reads):
    /// where the first read in flight starts.
    fn chunk_offset(&self) -> u64 {
        let ahead: u64 = self.inflight.iter().map(|s| s.want as u64).sum();
        self.next_offset - ahead
    }

    /// Where the file may end, with nothing in flight, when the chunk just
    /// handed out was short (the next step is then [`Step::Suspect`]).
    pub fn suspected_end(&self) -> Option<u64> {
        self.suspect.filter(|_| self.held.is_none() && !self.done)
    }

    /// Report a suspected end as [`Step::Suspect`], for the caller to decide
    /// when fs would (once the consumer has had every chunk before it),
    /// instead of reading at once.
    pub fn defer_end_decisions(&mut self) {
        self.defer_decisions = true;
    }

    /// After [`Step::Suspect`]: the file is not known to end there; the
    /// next step reads from there.
    pub fn resume(&mut self) {
        self.suspect = None;
    }

    /// The next step: a chunk, the end, or (with `defer_end_decisions`) a
    /// suspected end.
    pub async fn next_step(&mut self) -> io::Result<Step> {
        poll_fn(|cx| self.poll_step(cx)).await
    }

    /// The descriptor read.
    pub fn fd(&self) -> RawFd {
        self.fd
    }
}
