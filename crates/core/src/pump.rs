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

use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::buffer_pool::PoolBuf;
use crate::engine::Engine;
use crate::op_error::{OpError, Syscall};
use crate::reader::{Reader, ReaderOptions, CURRENT_POSITION};

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
    /// The consumer, back for more after a first chunk, found nothing ready
    /// since the task last looked: it keeps up with the reads, so more of
    /// them may be in flight. (Before the first chunk every consumer waits.)
    starved: bool,
    /// A chunk has been parked.
    delivered: bool,
    stopping: bool,
    /// destroy() asked for the descriptor to be closed.
    close_fd: bool,
    /// Called once the descriptor is closed (or was not ours to close).
    on_closed: Option<CloseCallback>,
    closed: Option<Result<(), OpError>>,
}

struct Shared {
    st: Mutex<State>,
    room: Notify,
    stop: Notify,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks an item (a chunk, or the end) and calls a waiting consumer.
    fn deliver(&self, chunk: Option<PoolBuf>, end: Option<Result<(), OpError>>) {
        let cb = {
            let mut st = self.lock();
            if let Some(c) = chunk {
                st.ready.push_back(c);
                st.delivered = true;
            }
            if end.is_some() && st.end.is_none() {
                st.end = end;
            }
            st.on_ready.take()
        };
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
    /// Chunks the queue may hold before the reader pauses.
    pub queue_chunks: usize,
    /// The read window may double up to this many reads, each time the
    /// consumer finds nothing ready (it keeps up): read-ahead grows for a
    /// fast consumer only, never for one that lets the queue fill. At or
    /// below `reader.max_window`: no growth.
    pub grow_window_to: usize,
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
            capacity: opts.queue_chunks.max(1),
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
            if opts.start_unless_stream {
                if let Ok(st) = engine.fstat(fd).await {
                    if !st.has_offsets() {
                        reader_opts.start = CURRENT_POSITION;
                    }
                }
            }
            let mut reader = Reader::new(engine.clone(), fd, reader_opts);
            let growth = Growth {
                to: opts.grow_window_to,
                chunk: opts.reader.chunk_size,
            };
            pump(&s, &mut reader, growth).await;
            // Whatever ended the reading, no read may still be in the kernel
            // when the descriptor is closed.
            reader.finish().await;
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

    /// Everything ready now, without waiting. When nothing is ready and the
    /// stream has not ended, `on_ready` is kept and called once something is.
    pub fn take(&self, on_ready: impl FnOnce() -> Callback) -> Taken {
        let mut st = self.shared.lock();
        let chunks: Vec<PoolBuf> = st.ready.drain(..).collect();
        let end = if chunks.is_empty() {
            st.end.take()
        } else {
            None
        };
        if chunks.is_empty() && end.is_none() {
            st.starved = st.delivered;
            if st.on_ready.is_none() {
                st.on_ready = Some(on_ready());
            }
        } else if st.wants_room {
            st.wants_room = false;
            drop(st);
            self.shared.room.notify_one();
        }
        Taken { chunks, end }
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
/// `destroy`.
async fn pump(s: &Shared, reader: &mut Reader, growth: Growth) {
    let mut grant = Grant(0);
    loop {
        // Wait for room in the queue (or for destroy).
        loop {
            {
                let mut st = s.lock();
                if st.stopping {
                    return;
                }
                let cur = reader.max_window();
                if std::mem::take(&mut st.starved) && cur < growth.to {
                    let new = (cur * 2).min(growth.to);
                    // Window and queue both grow by the difference.
                    if grant.add((new - cur) * growth.chunk * 2) {
                        reader.set_max_window(new);
                    }
                }
                // A grown window brings a queue as deep: a consumer that
                // takes in bursts must not stop the reads between them.
                if st.ready.len() < s.capacity.max(reader.max_window()) {
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
            r = reader.next_chunk() => r,
            _ = s.stop.notified() => return,
        };
        match next {
            Ok(Some(chunk)) => s.deliver(Some(chunk), None),
            Ok(None) => {
                s.deliver(None, Some(Ok(())));
                return;
            }
            Err(error) => {
                s.deliver(
                    None,
                    Some(Err(OpError {
                        syscall: Syscall::Read,
                        error,
                    })),
                );
                return;
            }
        }
    }
}

/// How far a stream's window may grow, and its chunk size.
struct Growth {
    to: usize,
    chunk: usize,
}

/// Read-ahead granted by growth (windows and queues), over every stream of
/// the process: a few fast consumers may have it, not hundreds at once.
static GROWN_BYTES: AtomicUsize = AtomicUsize::new(0);
/// At most this much grown read-ahead in the whole process.
const GROWN_BUDGET: usize = 256 << 20;

/// One stream's share of [`GROWN_BYTES`], given back when dropped.
struct Grant(usize);

impl Grant {
    /// Takes `n` more bytes of the budget if they are there.
    fn add(&mut self, n: usize) -> bool {
        let took = GROWN_BYTES.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            used.checked_add(n).filter(|&total| total <= GROWN_BUDGET)
        });
        if took.is_ok() {
            self.0 += n;
        }
        took.is_ok()
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        GROWN_BYTES.fetch_sub(self.0, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_stay_within_the_budget_and_are_given_back() {
        let before = GROWN_BYTES.load(Ordering::Acquire);
        let mut a = Grant(0);
        assert!(a.add(GROWN_BUDGET - before));
        let mut b = Grant(0);
        assert!(!b.add(1), "nothing is left");
        drop(a);
        assert!(b.add(1 << 20), "a dropped grant is given back");
        drop(b);
        assert_eq!(GROWN_BYTES.load(Ordering::Acquire), before);
    }
}
