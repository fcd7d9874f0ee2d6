//! Hands a [`Reader`](crate::Reader)'s chunks to a thread outside the
//! runtime (Node's JavaScript thread) without making it wait. The task that
//! reads is in `task.rs`, what it shares with the consumer in `shared.rs`.
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

mod shared;
mod task;

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::buffer_pool::PoolBuf;
use crate::engine::Engine;
use crate::op_error::{OpError, Syscall};
use crate::stream::read_ahead::ReadAhead;
use crate::stream::reader::ReaderOptions;
use shared::{ends_at, finish_closed, Shared, State};
use task::{fire_open, OpenSlot};

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
    /// back for more and finds nothing ready (see [`crate::stream::read_ahead`]).
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
        let task = rt.spawn(task::run(task_shared, engine, source, opts, open_slot));
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
