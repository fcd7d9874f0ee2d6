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
//! after each take it lends as many as reads were started since its last
//! loan ([`ReadPump::wanted`]), so the reads keep going into its memory;
//! a read that finds none lent reads into a pool buffer.

use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::buffer_pool::PoolBuf;
use crate::engine::Engine;
use crate::op_error::{OpError, Syscall};
use crate::reader::{BufferSupply, Reader, ReaderOptions, CURRENT_POSITION};

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
    spares: Arc<Spares>,
}

/// Buffers the consumer lent for the reads to fill.
#[derive(Default)]
struct Spares {
    st: Mutex<SparesState>,
}

#[derive(Default)]
struct SparesState {
    free: Vec<PoolBuf>,
    /// Reads started (each took a buffer) less buffers given back, since
    /// the consumer last lent some: how many it should lend next.
    wanted: usize,
    /// The stream is over: nothing more is lent or kept.
    closed: bool,
}

impl Spares {
    fn lock(&self) -> MutexGuard<'_, SparesState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lend(&self, bufs: Vec<PoolBuf>) {
        let mut st = self.lock();
        if st.closed {
            drop(st);
            drop(bufs);
            return;
        }
        st.wanted = st.wanted.saturating_sub(bufs.len());
        st.free.extend(bufs);
    }

    /// Everything kept, and no more keeping: the caller drops them (on the
    /// consumer's thread, which is where lent memory is best released).
    fn close(&self) -> Vec<PoolBuf> {
        let mut st = self.lock();
        st.closed = true;
        st.wanted = 0;
        std::mem::take(&mut st.free)
    }
}

impl BufferSupply for Spares {
    fn take(&self, want: usize) -> Option<PoolBuf> {
        let mut st = self.lock();
        if st.closed {
            return None;
        }
        st.wanted += 1;
        let i = st.free.iter().rposition(|b| b.capacity() >= want)?;
        Some(st.free.swap_remove(i))
    }

    fn give_back(&self, mut buf: PoolBuf) {
        let mut st = self.lock();
        if !st.closed {
            buf.clear();
            st.free.push(buf);
            st.wanted = st.wanted.saturating_sub(1);
            return;
        }
        drop(st);
        drop(buf);
    }
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
            spares: Arc::default(),
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
            reader.set_supply(s.spares.clone());
            let end = pump(&s, &mut reader).await;
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

    /// Buffers for the reads to fill, from the consumer (who should lend
    /// [`ReadPump::wanted`] of them, each room for a whole chunk). Once the
    /// stream is over they are dropped here, on the caller's thread.
    pub fn lend(&self, bufs: Vec<PoolBuf>) {
        self.shared.spares.lend(bufs);
    }

    /// How many buffers the reads have taken since the last loan.
    pub fn wanted(&self) -> usize {
        self.shared.spares.lock().wanted
    }

    /// Ends lending: the buffers lent and not in use are returned (for the
    /// caller to drop on its thread); later loans, and buffers reads give
    /// back, are dropped.
    pub fn reclaim(&self) -> Vec<PoolBuf> {
        self.shared.spares.close()
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
                if st.ready.len() < s.capacity {
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
            _ = s.stop.notified() => return None,
        };
        match next {
            Ok(Some(chunk)) => s.deliver(Some(chunk), None),
            Ok(None) => return Some(Ok(())),
            Err(error) => {
                return Some(Err(OpError {
                    syscall: Syscall::Read,
                    error,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr::NonNull;

    fn lent(n: usize) -> PoolBuf {
        let mut v = vec![0u8; n];
        let p = NonNull::new(v.as_mut_ptr()).expect("non-null");
        // SAFETY: the Vec, moved into the lender, keeps its heap block.
        unsafe { PoolBuf::lent(Box::new(v), p, n) }
    }

    #[test]
    fn spares_ask_for_what_reads_took_and_keep_nothing_once_closed() {
        let s = Spares::default();
        assert!(s.take(10).is_none(), "nothing lent yet");
        assert_eq!(s.lock().wanted, 1, "a read that found none wants one");
        s.lend(vec![lent(10), lent(4)]);
        assert_eq!(s.lock().wanted, 0);
        assert!(
            s.take(8).is_some_and(|b| b.capacity() == 10),
            "only a large enough one"
        );
        assert!(s.take(8).is_none(), "the small one does not fit");
        let small = s.take(4).expect("fits");
        assert_eq!(s.lock().wanted, 3);
        let mut used = small;
        used.clear();
        s.give_back(used);
        assert_eq!(
            s.lock().wanted,
            2,
            "a buffer given back is one less to lend"
        );
        let kept = s.close();
        assert_eq!(kept.len(), 1);
        s.lend(vec![lent(10)]);
        s.give_back(lent(10));
        assert!(s.lock().free.is_empty(), "nothing is kept once closed");
        assert!(s.take(1).is_none());
    }
}
