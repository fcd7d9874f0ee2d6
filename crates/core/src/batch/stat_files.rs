//! Batched metadata of many paths: `stat(2)` (or `lstat(2)`) of each, many
//! in flight at once, so that on io_uring the statx SQEs of many paths share
//! each `io_uring_enter`.
//!
//! [`PathStat`] holds every field Node's `fs.Stats` is built from, taken the
//! way libuv takes them (statx with `STATX_BASIC_STATS | STATX_BTIME`, device
//! numbers joined with `makedev`), so that the numbers match `fs.stat`'s.

use std::ffi::CString;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::engine::Engine;
use crate::vocabulary::PathStat;

/// The system call a batch stands for in errors: `stat` follows a final
/// symbolic link, `lstat` does not.
pub fn syscall_name(follow: bool) -> &'static str {
    if follow {
        "stat"
    } else {
        "lstat"
    }
}

/// Stats every path in `paths` (`follow`: stat, else lstat), at most
/// `concurrency` at a time. Results are in the order of `paths`; one path's
/// failure never fails the others (its error is what the system call said:
/// see [`syscall_name`]).
///
/// A statx runs on the kernel's io-wq threads, whose completions come back a
/// few at a time, more so on a busy machine. Starting a new stat for each as
/// it arrives sent a few SQEs per `io_uring_enter` (with a task per path, as
/// `files::read_files` has, about 30 at best, 10 under load). So all the
/// stats run inside this one future, and freed slots are refilled together
/// once a quarter of them are free: each group's SQEs are queued in one poll
/// and share one enter, at the price of up to a quarter of `concurrency`
/// idle meanwhile.
pub async fn stat_files(
    engine: &Engine,
    paths: Vec<CString>,
    follow: bool,
    concurrency: usize,
) -> Vec<io::Result<PathStat>> {
    run_bounded(paths, concurrency, |path| engine.stat_path(path, follow))
        .await
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(io::Error::other("uring-fs: stat never ran"))))
        .collect()
}

/// Runs `start(item)` for every item, at most `limit` at a time, all inside
/// the calling task; the outputs in the order of `items`. Each is Some when
/// this returns: a future that panics unwinds through here instead.
async fn run_bounded<T, F, Fut>(items: Vec<T>, limit: usize, start: F) -> Vec<Option<Fut::Output>>
where
    F: Fn(T) -> Fut,
    Fut: Future,
{
    let total = items.len();
    let limit = limit.max(1).min(total);
    let mut out: Vec<Option<Fut::Output>> = (0..total).map(|_| None).collect();
    let mut pending = items.into_iter().enumerate();
    let ready = Arc::new(Ready::default());
    // Slot k: the item index and future in flight there; wakers[k] marks k
    // ready. Boxed: a future must not move once polled.
    let mut slots: Vec<Option<(usize, Pin<Box<Fut>>)>> = (0..limit).map(|_| None).collect();
    let wakers: Vec<Waker> = (0..limit)
        .map(|slot| {
            Waker::from(Arc::new(SlotWaker {
                ready: ready.clone(),
                slot,
            }))
        })
        .collect();
    let mut free: Vec<usize> = (0..limit).rev().collect();
    let mut running = 0usize;
    let group = (limit / 4).max(1);
    poll_fn(|cx| {
        // Registered before taking the ready list, so a wake after the take
        // polls this future again.
        let woken = {
            let mut st = ready.lock();
            st.parent = Some(cx.waker().clone());
            std::mem::take(&mut st.slots)
        };
        for k in woken {
            let Some((i, fut)) = slots[k].as_mut() else {
                continue; // a second wake of a slot already done
            };
            if let Poll::Ready(res) = fut.as_mut().poll(&mut Context::from_waker(&wakers[k])) {
                out[*i] = Some(res);
                slots[k] = None;
                running -= 1;
                free.push(k);
            }
        }
        // Free slots are refilled a group at a time (a quarter of `limit`),
        // or when nothing else runs: all of a group's futures start in this
        // one poll, so on io_uring their SQEs share one `io_uring_enter`.
        if free.len() >= group || running == 0 {
            while let Some(k) = free.pop() {
                let Some((i, item)) = pending.next() else {
                    free.push(k);
                    break;
                };
                let mut fut = Box::pin(start(item));
                // The first poll registers the slot's waker (on io_uring the
                // SQE is queued already, when the future was made).
                match fut.as_mut().poll(&mut Context::from_waker(&wakers[k])) {
                    Poll::Ready(res) => {
                        out[i] = Some(res);
                        free.push(k);
                    }
                    Poll::Pending => {
                        slots[k] = Some((i, fut));
                        running += 1;
                    }
                }
            }
        }
        if running == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out
}

/// Which slots were woken since the last poll, and who polls them.
#[derive(Default)]
struct Ready(Mutex<ReadyState>);

#[derive(Default)]
struct ReadyState {
    slots: Vec<usize>,
    parent: Option<Waker>,
}

impl Ready {
    fn lock(&self) -> MutexGuard<'_, ReadyState> {
        // The state is a list and a waker, whole at every step: a panic
        // elsewhere while it was held leaves nothing half-done.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One slot's waker: marks the slot ready and wakes the one task.
struct SlotWaker {
    ready: Arc<Ready>,
    slot: usize,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let parent = {
            let mut st = self.ready.lock();
            st.slots.push(self.slot);
            st.parent.take()
        };
        if let Some(w) = parent {
            w.wake();
        }
    }
}
