//! [`crate::vocabulary::send_body`] on io_uring: the head with SEND, then the file in
//! pipe-sized pieces, each spliced file -> pipe -> socket, never copied to
//! user memory.
//!
//! Cached file ranges skip the pipe: when `cachestat` says the next piece
//! is all in the page cache, `sendfile(2)` moves it on this thread without
//! blocking (the socket is non-blocking), and a full socket is waited for
//! with a POLL_ADD. io_uring runs every SPLICE in a kernel worker thread,
//! a hand-off per piece that costs more CPU than the move itself when no
//! disk is involved (measured: 16 MiB responses 0.30 s of server CPU per
//! GiB with splice only, against nginx's 0.22); the pipe path stays for
//! data that must come from the disk, which the worker then waits for.
//!
//! Each round is one linked chain in one submission: [poll for room] ->
//! [send the rest of the head] -> [splice file -> pipe] -> [splice pipe ->
//! socket]. When every step completes in full (a small file, a socket with
//! room) the whole response is one round trip. A step that falls short
//! breaks the chain (the rest complete with ECANCELED) and the next round
//! picks up from the counts: bytes still in the pipe are sent before more
//! of the file is read, and EAGAIN from a full socket starts the next round
//! with a poll for room. Nothing waits in a kernel worker: the pipe and the
//! socket are non-blocking, and a client that stops reading costs one
//! pending poll.
//!
//! The pipe is taken from the pool only for a round that splices, and goes
//! back as soon as a round leaves it empty: a response on the `sendfile`
//! path never holds one, and neither does one waiting for room with its
//! pipe drained. A transfer that stalls (`stall_after`) with bytes left in
//! the pipe closes it: those bytes are still in the file, and the caller's
//! next transfer starts from the first byte that reached the socket.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use io_uring::squeue;

use super::op::Op;
use super::pipe_pool::Pipe;
use super::poll::poll_out_sqe;
use super::send::send_sqe;
use super::splice::{splice_sqe, NO_OFFSET};
use super::Driver;
use crate::backend::fallback::send_inline::imp::{cached, sendfile_once};
use crate::op_error::Syscall;
use crate::vocabulary::send_body::{file_ended_early, SendOutcome, SocketHandle};

/// The most one inline `sendfile` is asked to move (a socket takes less).
const SENDFILE_CHUNK: u64 = 4 << 20;

/// Everything the kernel may touch during a transfer. Every request holds a
/// share, so a dropped transfer future leaves nothing closed or freed
/// before the last CQE: neither the head's bytes nor a descriptor number
/// that a new open could reuse.
struct Keep {
    _socket: Arc<SocketHandle>,
    head: Vec<u8>,
    file: Arc<OwnedFd>,
}

/// What one request holds: the transfer's share, and the pipe's while the
/// round has one (the pipe is taken and given back between rounds).
type Held = (Arc<Keep>, Option<Arc<Pipe>>);

/// One request of a round, to read its result back.
enum Step {
    Poll,
    Head,
    FileToPipe,
    PipeToSocket,
}

/// What a round learned that changes the next one.
struct Round {
    error: Option<(Syscall, io::Error)>,
    wait_for_room: bool,
}

impl Driver {
    /// Sends `head` then `len` bytes of `file` from `offset` to `socket`.
    pub(crate) async fn splice_body(
        &self,
        socket: &Arc<SocketHandle>,
        head: Vec<u8>,
        file: &Arc<OwnedFd>,
        offset: u64,
        len: u64,
        stall_after: Option<Duration>,
    ) -> SendOutcome {
        let mut out = SendOutcome::default();
        // Open until the transfer closes it, after this returns.
        let Some(sock) = socket.raw() else {
            out.fail(Syscall::Write, io::Error::from_raw_os_error(libc::EBADF));
            return out;
        };
        let keep = Arc::new(Keep {
            _socket: socket.clone(),
            head,
            file: file.clone(),
        });
        let file_fd = keep.file.as_raw_fd();
        // Taken for a round that splices; `Some` between rounds only while
        // it holds bytes still to send.
        let mut pipe: Option<Arc<Pipe>> = None;
        let end = offset + len;
        let mut at = offset; // next file byte to go into the pipe
        let mut in_pipe: u64 = 0;
        let mut wait_for_room = false;
        // File bytes below this were seen in the page cache: a socket takes
        // far less than SENDFILE_CHUNK per call, and asking cachestat again
        // for the whole chunk before every call cost about a tenth of the
        // server's CPU for 16 MiB responses (it walks every page).
        let mut seen_cached = offset;
        loop {
            let head_left = keep.head.len() - out.head_sent;
            if head_left == 0 && at == end && in_pipe == 0 {
                break;
            }
            if head_left == 0 && in_pipe == 0 && at < end {
                let mut chunk = (end - at).min(SENDFILE_CHUNK);
                if at < seen_cached {
                    chunk = chunk.min(seen_cached - at);
                } else if cached(file_fd, at, chunk) {
                    seen_cached = at + chunk;
                }
                if at < seen_cached {
                    match sendfile_once(sock, file_fd, at, chunk) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Ok(0) => {
                            out.fail(Syscall::Read, file_ended_early());
                            break;
                        }
                        Ok(n) => {
                            at += n;
                            out.body_sent += n;
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            match self.room(sock, &keep, stall_after).await {
                                Ok(true) => continue,
                                Ok(false) => {
                                    out.stalled = true;
                                    break;
                                }
                                Err(e) => {
                                    out.fail(Syscall::Write, e);
                                    break;
                                }
                            }
                        }
                        Err(e) => {
                            out.fail(Syscall::Write, e);
                            break;
                        }
                    }
                }
            }
            if wait_for_room && head_left == 0 {
                // A lone wait, which may stall: a client that stopped
                // reading may keep it waiting for a long time. An empty
                // pipe went back to the pool after the last round.
                match self.room(sock, &keep, stall_after).await {
                    Ok(true) => {}
                    Ok(false) => {
                        // Bytes still in the pipe never reached the socket
                        // (`body_sent` does not count them): the pipe is
                        // closed with them, and the next transfer reads
                        // them from the file again. Nothing is held.
                        if in_pipe > 0 {
                            pipe = None;
                            in_pipe = 0;
                        }
                        out.stalled = true;
                        break;
                    }
                    Err(e) => {
                        out.fail(Syscall::Write, e);
                        break;
                    }
                }
                wait_for_room = false;
                continue;
            }
            let mut steps = Vec::with_capacity(4);
            let mut sqes = Vec::with_capacity(4);
            if wait_for_room {
                steps.push(Step::Poll);
                sqes.push(poll_out_sqe(sock));
            }
            if head_left > 0 {
                // The head is at most a few KiB; it points into `keep`,
                // which the request holds.
                let rest = &keep.head[out.head_sent..];
                steps.push(Step::Head);
                sqes.push(send_sqe(sock, rest.as_ptr(), rest.len() as u32, len > 0));
            }
            let splices = in_pipe > 0 || at < end;
            if splices && pipe.is_none() {
                match Pipe::take() {
                    Ok(p) => pipe = Some(Arc::new(p)),
                    Err(e) => {
                        out.fail(Syscall::Write, e);
                        break;
                    }
                }
            }
            let (pipe_r, pipe_w, capacity) = match &pipe {
                Some(p) => (
                    p.read.as_raw_fd(),
                    p.write.as_raw_fd(),
                    u64::from(p.capacity),
                ),
                None => (-1, -1, 0),
            };
            let mut to_send = in_pipe;
            if in_pipe == 0 && at < end {
                let n = (end - at).min(capacity);
                steps.push(Step::FileToPipe);
                sqes.push(splice_sqe(
                    file_fd, at as i64, pipe_w, NO_OFFSET, n as u32, false,
                ));
                to_send = n;
            }
            if to_send > 0 {
                let more_after = if in_pipe > 0 {
                    at < end
                } else {
                    at + to_send < end
                };
                steps.push(Step::PipeToSocket);
                sqes.push(splice_sqe(
                    pipe_r,
                    NO_OFFSET,
                    sock,
                    NO_OFFSET,
                    to_send as u32,
                    more_after,
                ));
            }
            let last = sqes.len() - 1;
            let reqs = sqes
                .into_iter()
                .enumerate()
                .map(|(i, sqe)| {
                    let sqe = if i < last {
                        sqe.flags(squeue::Flags::IO_LINK)
                    } else {
                        sqe
                    };
                    let held: Held = (keep.clone(), pipe.clone());
                    (sqe, held)
                })
                .collect();
            let ops = Op::submit_batch(&self.shared, reqs);
            let mut round = Round {
                error: None,
                wait_for_room: false,
            };
            for (step, op) in steps.into_iter().zip(ops) {
                let res = op.await.result;
                if res == -libc::ECANCELED {
                    continue; // an earlier step fell short; next round
                }
                match step {
                    Step::Poll if res < 0 => round.fail(Syscall::Write, res),
                    Step::Poll => {}
                    Step::Head if res < 0 => round.fail(Syscall::Write, res),
                    Step::Head => out.head_sent += res as usize,
                    Step::FileToPipe if res == 0 => {
                        round
                            .error
                            .get_or_insert((Syscall::Read, file_ended_early()));
                    }
                    // EAGAIN: the pipe is full, which an emptied pipe is not;
                    // retried next round like a short splice.
                    Step::FileToPipe if res == -libc::EAGAIN => {}
                    Step::FileToPipe if res < 0 => round.fail(Syscall::Read, res),
                    Step::FileToPipe => {
                        in_pipe += res as u64;
                        at += res as u64;
                    }
                    Step::PipeToSocket if res == -libc::EAGAIN => round.wait_for_room = true,
                    Step::PipeToSocket if res < 0 => round.fail(Syscall::Write, res),
                    Step::PipeToSocket => {
                        in_pipe -= (res as u64).min(in_pipe);
                        out.body_sent += res as u64;
                    }
                }
            }
            if let Some((syscall, e)) = round.error {
                out.fail(syscall, e);
                break;
            }
            wait_for_room = round.wait_for_room;
            if in_pipe == 0 {
                give_back(&mut pipe);
            }
        }
        // A pipe that still holds bytes (a transfer cut short) is dropped.
        if in_pipe == 0 {
            give_back(&mut pipe);
        }
        out
    }
}

impl Driver {
    /// Waits for room in `sock` with a lone POLL_ADD; `Ok(false)` when
    /// `stall_after` passed first. The poll is then dropped: the driver
    /// cancels it, and it holds its own share of `keep` until its
    /// completion, so nothing it refers to closes before.
    async fn room(
        &self,
        sock: RawFd,
        keep: &Arc<Keep>,
        stall_after: Option<Duration>,
    ) -> io::Result<bool> {
        let held: Held = (keep.clone(), None);
        let poll = Op::submit(&self.shared, poll_out_sqe(sock), held);
        let res = match stall_after {
            None => poll.await.result,
            Some(d) => match tokio::time::timeout(d, poll).await {
                Ok(done) => done.result,
                Err(_) => return Ok(false),
            },
        };
        if res < 0 {
            return Err(io::Error::from_raw_os_error(-res));
        }
        Ok(true)
    }
}

/// Returns an empty pipe to the pool. Every request of the round has
/// completed, so the pipe is this future's alone.
fn give_back(pipe: &mut Option<Arc<Pipe>>) {
    if let Some(p) = pipe.take() {
        if let Ok(p) = Arc::try_unwrap(p) {
            p.give_back();
        }
    }
}

impl Round {
    fn fail(&mut self, syscall: Syscall, res: i32) {
        self.error
            .get_or_insert((syscall, io::Error::from_raw_os_error(-res)));
    }
}
