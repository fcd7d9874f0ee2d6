//! What the pump's task and its consumer share: the queue of chunks ready,
//! the end, the callbacks, and the suspected end of file that the
//! consumer's take decides (see [`ends_at`]).

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::{Callback, CloseCallback};
use crate::buffer_pool::PoolBuf;
use crate::fd_stat::fstat_now;
use crate::op_error::OpError;
use crate::stream::read_ahead::ReadAhead;

#[derive(Default)]
pub(super) struct State {
    pub(super) ready: VecDeque<PoolBuf>,
    pub(super) end: Option<Result<(), OpError>>,
    /// The consumer found nothing and waits for this to be called.
    pub(super) on_ready: Option<Callback>,
    /// The task waits for the consumer to make room.
    pub(super) wants_room: bool,
    /// A chunk has been parked.
    pub(super) delivered: bool,
    pub(super) stopping: bool,
    /// destroy() asked for the descriptor to be closed.
    pub(super) close_fd: bool,
    /// Called once the descriptor is closed (or was not ours to close).
    pub(super) on_closed: Option<CloseCallback>,
    /// The file may end at this offset of this descriptor, after the chunks
    /// still queued: the take that hands the last of them out decides (see
    /// [`ends_at`]), as fs reads again once the previous chunk is pushed.
    pub(super) suspect: Option<(RawFd, u64)>,
    /// `suspect` was queued with a short chunk (and may be decided already).
    pub(super) suspect_queued: bool,
    pub(super) closed: Option<Result<(), OpError>>,
}

pub(super) struct Shared {
    pub(super) st: Mutex<State>,
    pub(super) room: Notify,
    pub(super) stop: Notify,
    /// How far to read ahead, and the Buffers lent for it.
    pub(super) ahead: Arc<ReadAhead>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks a short chunk together with the end it makes suspect, so that
    /// the take that hands it out decides (it may do so before the task
    /// looks again).
    pub(super) fn deliver_before_suspect(&self, chunk: PoolBuf, suspect: (RawFd, u64)) {
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
    pub(super) fn deliver(&self, chunk: Option<PoolBuf>, end: Option<Result<(), OpError>>) {
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

pub(super) fn finish_closed(s: &Shared, res: Result<(), OpError>) {
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

/// Whether a regular file is at most `at` bytes long now; `None` when its
/// size says nothing (not a regular file, or fstat failed): a read decides.
pub(super) fn ends_at(fd: RawFd, at: u64) -> Option<bool> {
    let st = fstat_now(fd).ok()?;
    st.is_regular().then_some(st.size <= at)
}
