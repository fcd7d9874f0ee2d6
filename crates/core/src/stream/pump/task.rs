//! The pump's task on the runtime: open, read ahead into the queue, decide
//! a suspected end of file no earlier than fs would, and close.

use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};

use super::shared::{ends_at, finish_closed, Shared};
use super::{PumpOptions, Source};
use crate::engine::Engine;
use crate::fd_stat::seekable;
use crate::op_error::{OpError, Syscall};
use crate::stream::reader::{Reader, Step};
use crate::vocabulary::CURRENT_POSITION;

pub(super) type OpenSlot = Arc<Mutex<Option<Box<dyn FnOnce(Result<RawFd, OpError>) + Send>>>>;

/// Calls the open callback, once.
pub(super) fn fire_open(slot: &OpenSlot, res: Result<RawFd, OpError>) {
    let cb = slot.lock().ok().and_then(|mut c| c.take());
    if let Some(cb) = cb {
        cb(res);
    }
}

/// The pump's task: opens (unless given a descriptor), reads until the
/// end, an error or `destroy`, waits for every read to come back from the
/// kernel, then closes the descriptor if `destroy` asked.
pub(super) async fn run(
    s: Arc<Shared>,
    engine: Engine,
    source: Source,
    opts: PumpOptions,
    open_slot: OpenSlot,
) {
    let on_open = |res| fire_open(&open_slot, res);
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
    let mut size_hint = None;
    if opts.start_unless_stream {
        if let Ok(st) = engine.fstat(fd).await {
            if !st.has_offsets() {
                reader_opts.start = CURRENT_POSITION;
            } else if st.is_regular() {
                size_hint = Some(st.size);
            }
        }
    }
    let mut reader = Reader::new(engine.clone(), fd, reader_opts);
    reader.set_supply(s.ahead.clone());
    if let Some(size) = size_hint {
        reader.set_size_hint(size);
    }
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
