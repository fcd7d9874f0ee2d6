//! Hands a [`Reader`]'s chunks to a thread outside the runtime (Node's
//! JavaScript thread) without making it wait.
//!
//! A task on the runtime keeps the reader busy and parks finished chunks in
//! a queue. The consumer takes *everything* that is ready in one call that
//! never blocks; only when the queue is empty does it register a callback,
//! which the task calls once, when the next chunk (or the end) arrives. By
//! the time the callback has crossed threads, more chunks are usually ready,
//! so each crossing carries several.
//!
//! [`ReadPump::destroy`] stops the task, cancels the reads in flight, waits
//! for the kernel to return them, and only then closes the descriptor.
//!
//! The consumer may lend the buffers the reads fill ([`ReadPump::lend`]):
//! each take ([`ReadPump::take_lending`]) lends as many as the read-ahead
//! has room for once the chunks ready are taken, so the reads keep going
//! into its memory; a read that finds none lent reads into a pool buffer.

use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::buffer_pool::PoolBuf;
use crate::engine::Engine;
use crate::fd_stat::{fstat_now, seekable};
use crate::op_error::{OpError, Syscall};
use crate::read_ahead::ReadAhead;
use crate::reader::{Reader, ReaderOptions, Step};
use crate::vocabulary::CURRENT_POSITION;

/// Called on the runtime's thread; the consumer makes it cross threads.
pub type Callback = Box<dyn FnOnce() + Send>;

/// Called once the descriptor is closed (or was not to be closed).
pub type CloseCallback = Box<dyn FnOnce(Result<(), OpError>) + Send>;

/// What a take found.
#[derive(Debug, Default)]
pub struct Taken {
    pub chunks: Vec<PoolBuf>,
    /// The stream ended: `Some(Ok)` at EOF, `Some(Err)` on failure.
    pub end: Option<Result<(), OpError>>,
}

#[derive(Default)]
struct State {
    ready: VecDeque<PoolBuf>,
    end: Option<Result<(), OpError>>,
    /// The consumer found nothing and waits for this to be called.
    on_ready: Option<Callback>,
    /// The task waits for the consumer to make room.
    wants_room: bool,
    /// A chunk has been parked.
    delivered: bool,
    stopping: bool,
    /// destroy() asked for the descriptor to be closed.
    close_fd: bool,
    /// Called once the descriptor is closed (or was not ours to close).
    on_closed: Option<CloseCallback>,
    /// The file may end at this offset of this descriptor, after the chunks
    /// still queued: the take that hands the last of them out decides (see
    /// [`ends_at`]), as fs reads again once the previous chunk is pushed.
    suspect: Option<(RawFd, u64)>,
    /// `suspect` was queued with a short chunk (and may be decided already).
    suspect_queued: bool,
    closed: Option<Result<(), OpError>>,
}

struct Shared {
    st: Mutex<State>,
    room: Notify,
    stop: Notify,
    /// How far to read ahead, and the Buffers lent for it.
    ahead: Arc<ReadAhead>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks a short chunk together with the end it makes suspect, so that
    /// the take that hands it out decides (it may do so before the task
    /// looks again).
    fn deliver_before_suspect(&self, chunk: PoolBuf, suspect: (RawFd, u64)) {
        let (cb, late) = {
            let mut st = self.lock();
            if st.stopping {
                (None, Some(chunk))
            } else {
                st.ready.push_back(chunk);
                st.delivered = true;
                st.suspect = Some(suspect);
                st.suspect_queued = true;
                (st.on_ready.take(), None)
            }
        };
        drop(late);
        if let Some(cb) = cb {
            cb();
        }
    }

    /// Parks an item (a chunk, or the end) and calls a waiting consumer.
    fn deliver(&self, chunk: Option<PoolBuf>, end: Option<Result<(), OpError>>) {
        let (cb, late) = {
            let mut st = self.lock();
            // After destroy() nobody takes chunks: one that comes late is
            // dropped (outside the lock), not kept until the pump is.
            let late = match chunk {
                Some(c) if !st.stopping => {
                    st.ready.push_back(c);
                    st.delivered = true;
                    None
                }
                late => late,
            };
            if end.is_some() && st.end.is_none() {
                st.end = end;
            }
            (st.on_ready.take(), late)
        };
        drop(late);
        if let Some(cb) = cb {
            cb();
        }
    }
}

/// Where the descriptor comes from.
pub enum Source {
    /// Open this path (flags, mode) first.
    Path(CString, i32, u32),
    /// Read an already open descriptor.
    Fd(RawFd),
}

pub struct PumpOptions {
    pub reader: ReaderOptions,
    /// The caller gave no start: a file that has no offsets (a FIFO, a
    /// character device) opened by path is then read at its current
    /// position, as fs reads it, instead of failing with positional reads.
    pub start_unless_stream: bool,
    /// Chunks read ahead of the consumer in all: reads in flight and
    /// chunks waiting to be taken together. While chunks wait, fewer reads
    /// are in flight, so a consumer that is late for a moment finds more
    /// waiting without the stream holding more memory.
    pub read_ahead: usize,
    /// The read-ahead doubles, up to this, each time the consumer comes
    /// back for more and finds nothing ready (see [`crate::read_ahead`]).
    /// At or below `read_ahead`: no growth.
    pub grow_read_ahead_to: usize,
}

#[derive(Clone)]
pub struct ReadPump {
    shared: Arc<Shared>,
}

impl ReadPump {
    /// Starts the pump on `rt`. `on_open` is called (on the runtime) with the
    /// descriptor once it is open, or with the open error.
    pub fn start(
        rt: &Handle,
        engine: Engine,
        source: Source,
        opts: PumpOptions,
        on_open: Box<dyn FnOnce(Result<RawFd, OpError>) + Send>,
    ) -> ReadPump {
        let shared = Arc::new(Shared {
            st: Mutex::new(State::default()),
            room: Notify::new(),
            stop: Notify::new(),
            ahead: Arc::new(ReadAhead::new(
                opts.read_ahead,
                opts.grow_read_ahead_to,
                opts.reader.chunk_size,
            )),
        });
        let task_shared = shared.clone();
        let open_slot: OpenSlot = Arc::new(Mutex::new(Some(on_open)));
        let guard_slot = open_slot.clone();
        let task = rt.spawn(async move {
            let on_open = |res| fire_open(&open_slot, res);
            let s = task_shared;
            let fd = match source {
                Source::Fd(fd) => fd,
                Source::Path(path, flags, mode) => match engine.open(path, flags, mode).await {
                    Ok(fd) => fd,
                    Err(error) => {
                        let errno = error.raw_os_error().unwrap_or(libc::EIO);
                        let mk = || OpError {
                            syscall: Syscall::Open,
                            error: io::Error::from_raw_os_error(errno),
                        };
                        on_open(Err(mk()));
                        s.deliver(None, Some(Err(mk())));
                        finish_closed(&s, Ok(()));
                        return;
                    }
                },
            };
            on_open(Ok(fd));
            let mut reader_opts = opts.reader;
            // fs reads at a given start with pread(2), which fails with
            // ESPIPE on a pipe; io_uring would read the pipe instead.
            let unseekable =
                !opts.start_unless_stream && reader_opts.start != CURRENT_POSITION && !seekable(fd);
            if opts.start_unless_stream {
                if let Ok(st) = engine.fstat(fd).await {
                    if !st.has_offsets() {
                        reader_opts.start = CURRENT_POSITION;
                    }
                }
            }
            let mut reader = Reader::new(engine.clone(), fd, reader_opts);
            reader.set_supply(s.ahead.clone());
            reader.defer_end_decisions();
            let end = if unseekable {
                Some(Err(OpError {
                    syscall: Syscall::Read,
                    error: io::Error::from_raw_os_error(libc::ESPIPE),
                }))
            } else {
                pump(&s, &mut reader).await
            };
            // Whatever ended the reading, no read may still be in the kernel
            // when the descriptor is closed. Reads past the end come back
            // before the end is reported, so that their lent buffers are
            // kept for the consumer to release, not dropped here.
            reader.finish().await;
            if let Some(end) = end {
                s.deliver(None, Some(end));
            }
            // Like fs streams, the descriptor is closed by destroy(), not by
            // the end of the data (autoClose is destroy-after-end in JS).
            let close_fd = loop {
                let stop = s.stop.notified();
                {
                    let st = s.lock();
                    if st.stopping {
                        break st.close_fd;
                    }
                }
                stop.await;
            };
            let closed = if close_fd {
                engine.close(fd).await.map_err(|error| OpError {
                    syscall: Syscall::Close,
                    error,
                })
            } else {
                Ok(())
            };
            finish_closed(&s, closed);
        });
        // A panic in the pump must not leave the consumer waiting forever:
        // report it as an I/O error on every path the consumer listens to.
        let guard = shared.clone();
        rt.spawn(async move {
            if let Err(e) = task.await {
                if e.is_panic() {
                    let err = || OpError {
                        syscall: Syscall::Read,
                        error: io::Error::other("uring-fs: internal error (panic)"),
                    };
                    fire_open(&guard_slot, Err(err()));
                    guard.deliver(None, Some(Err(err())));
                    finish_closed(&guard, Ok(()));
                }
            }
        });
        ReadPump { shared }
    }

    /// Buffers for the reads to fill, from the consumer, each with room
    /// for a whole chunk (more come with [`ReadPump::take_lending`]). Once
    /// the stream is over they are dropped here, on the caller's thread.
    pub fn lend(&self, bufs: Vec<PoolBuf>) {
        let _ = self.shared.ahead.lend_for(bufs, 0);
    }

    /// Ends lending: the buffers lent and not in use are returned (for the
    /// caller to drop on its thread); later loans, and buffers reads give
    /// back, are dropped.
    pub fn reclaim(&self) -> Vec<PoolBuf> {
        self.shared.ahead.close()
    }

    /// Everything ready now, without waiting. When nothing is ready and the
    /// stream has not ended, `on_ready` is kept and called once something is.
    pub fn take(&self, on_ready: impl FnOnce() -> Callback) -> Taken {
        self.take_lending(on_ready, |_| Vec::new())
    }

    /// [`ReadPump::take`], and lends the buffers `lend(n)` makes for the
    /// reads to fill: as many as the read-ahead has room for once the
    /// chunks ready are taken.
    pub fn take_lending(
        &self,
        on_ready: impl FnOnce() -> Callback,
        lend: impl FnOnce(usize) -> Vec<PoolBuf>,
    ) -> Taken {
        let ahead = &self.shared.ahead;
        // Made before the chunks are taken, and lent as they are (under the
        // same lock): the room they leave must never be seen without them,
        // or the reads it lets start would find nothing lent.
        let (ready, ended, delivered) = {
            let st = self.shared.lock();
            (st.ready.len(), st.end.is_some(), st.delivered)
        };
        if ready == 0 && !ended && delivered {
            // Back for more after a first chunk, and nothing is ready: this
            // consumer keeps up with the reads.
            ahead.grow();
        }
        let bufs = match ahead.wanted_after(ready) {
            n if n > 0 && !(ended && ready == 0) => lend(n),
            _ => Vec::new(),
        };
        let taken = {
            let mut st = self.shared.lock();
            // Chunks that came since the count above wait for the next
            // take: they were not lent for.
            let n = if ready > 0 { ready } else { st.ready.len() };
            let chunks: Vec<PoolBuf> = st.ready.drain(..n).collect();
            let held_back = ahead.lend_for(bufs, chunks.len());
            let end = if chunks.is_empty() {
                st.end.take()
            } else {
                None
            };
            let mut room = held_back;
            if chunks.is_empty() && end.is_none() {
                if st.on_ready.is_none() {
                    st.on_ready = Some(on_ready());
                }
            } else {
                room |= std::mem::take(&mut st.wants_room);
            }
            // The last chunk before a suspected end is handed out now, when
            // fs would read again: the file's size says whether it ends.
            let suspect = if st.ready.is_empty() && !chunks.is_empty() {
                st.suspect.take()
            } else {
                None
            };
            (Taken { chunks, end }, room, suspect)
        };
        let (taken, mut room, suspect) = taken;
        if let Some((fd, at)) = suspect {
            let ended = ends_at(fd, at);
            let mut st = self.shared.lock();
            if ended == Some(true) && st.end.is_none() && !st.stopping {
                // Nothing is in flight (the reader reported the suspicion
                // only then): the end can be the next take's.
                st.end = Some(Ok(()));
            }
            // The task waits for the answer either way.
            room = true;
        }
        if room {
            self.shared.room.notify_one();
        }
        taken
    }

    /// Stops reading. `on_closed` is called once every read in flight has
    /// come back from the kernel and, with `close_fd`, the descriptor is
    /// closed. Only the first call counts.
    pub fn destroy(&self, close_fd: bool, on_closed: CloseCallback) {
        let done = {
            let mut st = self.shared.lock();
            if st.stopping {
                return;
            }
            st.stopping = true;
            st.close_fd = close_fd;
            st.ready.clear();
            st.on_ready = None;
            match st.closed.take() {
                Some(res) => Some((res, on_closed)),
                None => {
                    st.on_closed = Some(on_closed);
                    None
                }
            }
        };
        self.shared.stop.notify_one();
        if let Some((res, cb)) = done {
            cb(res);
        }
    }
}

type OpenSlot = Arc<Mutex<Option<Box<dyn FnOnce(Result<RawFd, OpError>) + Send>>>>;

/// Calls the open callback, once.
fn fire_open(slot: &OpenSlot, res: Result<RawFd, OpError>) {
    let cb = slot.lock().ok().and_then(|mut c| c.take());
    if let Some(cb) = cb {
        cb(res);
    }
}

fn finish_closed(s: &Shared, res: Result<(), OpError>) {
    let cb = {
        let mut st = s.lock();
        match st.on_closed.take() {
            Some(cb) => Some((cb, res)),
            None => {
                st.closed = Some(res);
                None
            }
        }
    };
    if let Some((cb, res)) = cb {
        cb(res);
    }
}

/// Moves chunks from the reader to the queue until the end, an error, or
/// `destroy`; returns the end to report, if any.
async fn pump(s: &Shared, reader: &mut Reader) -> Option<Result<(), OpError>> {
    loop {
        // Wait for room in the queue (or for destroy).
        loop {
            {
                let mut st = s.lock();
                if st.stopping {
                    return None;
                }
                if st.ready.len() < s.ahead.chunks() {
                    st.wants_room = false;
                    break;
                }
                st.wants_room = true;
            }
            tokio::select! {
                _ = s.room.notified() => {}
                _ = s.stop.notified() => {}
            }
        }
        let next = tokio::select! {
            r = reader.next_step() => r,
            // Room for reads the read-ahead held back: look again.
            _ = s.room.notified() => continue,
            _ = s.stop.notified() => return None,
        };
        match next {
            // A short chunk: queued with the suspicion, so that the take
            // that hands it out decides.
            Ok(Step::Chunk(chunk)) => match reader.suspected_end() {
                Some(at) => s.deliver_before_suspect(chunk, (reader.fd(), at)),
                None => s.deliver(Some(chunk), None),
            },
            Ok(Step::End) => return Some(Ok(())),
            Ok(Step::Suspect(at)) => match decide_end(s, reader.fd(), at).await {
                Decision::End => return Some(Ok(())),
                Decision::Taken | Decision::Stopped => return None,
                Decision::ReadOn => reader.resume(),
            },
            Err(error) => {
                return Some(Err(OpError {
                    syscall: Syscall::Read,
                    error,
                }))
            }
        }
    }
}

/// What became of a suspected end of file.
enum Decision {
    /// The file ends there: the task reports it.
    End,
    /// The file ends there, and the consumer's take already recorded it.
    Taken,
    /// The file has grown (or its size is unknown): read on.
    ReadOn,
    Stopped,
}

/// Decides whether the file ends at `at`, no earlier than fs would: fs
/// reads again once the previous chunk is pushed, so the decision waits for
/// the consumer to take every chunk queued before it (that take decides, on
/// its thread, without a hand-off back), or is made now if none is queued.
async fn decide_end(s: &Shared, fd: RawFd, at: u64) -> Decision {
    {
        let mut st = s.lock();
        if st.stopping {
            return Decision::Stopped;
        }
        // After a short chunk, the suspicion is queued with it already.
        if st.suspect.is_none() && !st.ready.is_empty() && !st.suspect_queued {
            st.suspect = Some((fd, at));
        }
        st.suspect_queued = false;
    }
    loop {
        let room = s.room.notified();
        {
            let st = s.lock();
            if st.stopping {
                return Decision::Stopped;
            }
            if st.suspect.is_none() {
                break;
            }
        }
        tokio::select! {
            _ = room => {}
            _ = s.stop.notified() => {}
        }
    }
    let taken = s.lock().end.is_some();
    if taken {
        return Decision::Taken;
    }
    // Decided here when nothing was queued (or the consumer's take found
    // the file longer, and this looks again: the read that follows says).
    match ends_at(fd, at) {
        Some(true) => Decision::End,
        _ => Decision::ReadOn,
    }
}

/// Whether a regular file is at most `at` bytes long now; `None` when its
/// size says nothing (not a regular file, or fstat failed): a read decides.
fn ends_at(fd: RawFd, at: u64) -> Option<bool> {
    let st = fstat_now(fd).ok()?;
    st.is_regular().then_some(st.size <= at)
}
