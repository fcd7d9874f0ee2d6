//! A read stream's read-ahead: how many chunks may be read ahead of the
//! consumer (reads in flight and chunks waiting to be taken, together), and
//! the buffers the consumer lends for them.
//!
//! The consumer (the JavaScript thread) lends the buffers the reads fill,
//! so that its chunks are Buffers V8 allocated, which die young (in a
//! scavenge); an external Buffer over pool memory is held by a weak handle
//! that only a full GC clears. A lent Buffer that waits here long enough to
//! outlive two scavenges is promoted too, so the stream never holds more of
//! them than its read-ahead: the consumer lends, with each take, what the
//! read-ahead has room for once the chunks are taken, and a read starts
//! only within it.
//!
//! The read-ahead starts small and doubles each time the consumer comes
//! back for more and finds nothing ready (it keeps up with the reads), up to
//! the stream's maximum: a fast consumer gets reads on several cores, a
//! slow one (a slow HTTP client) holds little. What streams grow by is
//! granted from one process-wide budget, so hundreds of fast streams at
//! once cannot take more than [`GROWN_BUDGET`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::buffer_pool::PoolBuf;
use crate::stream::reader::BufferSupply;

pub(crate) struct ReadAhead {
    st: Mutex<State>,
}

struct State {
    free: Vec<PoolBuf>,
    /// Reads started (into lent or pool memory) whose chunks are not yet
    /// taken.
    in_use: usize,
    /// Chunks that may be read ahead now, and at most.
    chunks: usize,
    max_chunks: usize,
    chunk_size: usize,
    /// What growing took from the process-wide budget.
    grant: Grant,
    /// A read was held back for the read-ahead: the pump must look again
    /// once the consumer has taken chunks.
    refused: bool,
    /// The stream is over: nothing more is lent or kept.
    closed: bool,
    /// Reads still to start, when the reader knows (see
    /// [`BufferSupply::reads_left`]).
    reads_left: Option<usize>,
}

impl ReadAhead {
    /// `chunks` of `chunk_size` bytes ahead, growing up to `max_chunks`.
    pub(crate) fn new(chunks: usize, max_chunks: usize, chunk_size: usize) -> ReadAhead {
        let chunks = chunks.max(1);
        ReadAhead {
            st: Mutex::new(State {
                free: Vec::new(),
                in_use: 0,
                chunks,
                max_chunks: max_chunks.max(chunks),
                chunk_size,
                grant: Grant(0),
                refused: false,
                closed: false,
                reads_left: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Chunks that may be read ahead now.
    pub(crate) fn chunks(&self) -> usize {
        self.lock().chunks
    }

    /// The consumer found nothing ready: doubles the read-ahead, within the
    /// stream's maximum and the process-wide budget.
    pub(crate) fn grow(&self) {
        let mut st = self.lock();
        if st.closed || st.chunks >= st.max_chunks {
            return;
        }
        let to = (st.chunks * 2).min(st.max_chunks);
        let bytes = (to - st.chunks).saturating_mul(st.chunk_size);
        if st.grant.add(bytes) {
            st.chunks = to;
        }
    }

    /// Lends `bufs` as `taken` chunks go to the consumer. True when that
    /// makes room for a read that was held back.
    pub(crate) fn lend_for(&self, bufs: Vec<PoolBuf>, taken: usize) -> bool {
        let mut st = self.lock();
        st.in_use = st.in_use.saturating_sub(taken);
        let wake = taken > 0 && std::mem::take(&mut st.refused);
        if st.closed {
            drop(st);
            drop(bufs);
            return false;
        }
        st.free.extend(bufs);
        wake
    }

    /// Buffers to lend for the read-ahead to be whole once `taken` of the
    /// reads in use went to the consumer.
    pub(crate) fn wanted_after(&self, taken: usize) -> usize {
        let st = self.lock();
        if st.closed {
            return 0;
        }
        let started = st.in_use.saturating_sub(taken);
        let held = started + st.free.len();
        // No more than the reads still to come can use: a small file's
        // stream would otherwise have its whole read-ahead lent, most of it
        // for reads past the end that never start.
        let useful = st
            .reads_left
            .map_or(st.chunks, |left| st.chunks.min(started + left));
        useful.saturating_sub(held)
    }

    /// Everything kept, and no more keeping: the caller drops them (on the
    /// consumer's thread, which is where lent memory is best released).
    /// What the stream grew by goes back to the process-wide budget.
    pub(crate) fn close(&self) -> Vec<PoolBuf> {
        let mut st = self.lock();
        st.closed = true;
        st.grant.release();
        std::mem::take(&mut st.free)
    }
}

impl BufferSupply for ReadAhead {
    fn may_start(&self) -> bool {
        let mut st = self.lock();
        let ok = st.in_use < st.chunks;
        st.refused |= !ok;
        ok
    }

    fn take(&self, want: usize) -> Option<PoolBuf> {
        let mut st = self.lock();
        st.in_use += 1;
        let i = st.free.iter().rposition(|b| b.capacity() >= want)?;
        Some(st.free.swap_remove(i))
    }

    fn reads_left(&self, n: Option<usize>) {
        self.lock().reads_left = n;
    }

    fn give_back(&self, mut buf: PoolBuf) {
        let mut st = self.lock();
        st.in_use = st.in_use.saturating_sub(1);
        if !st.closed && buf.is_lent() {
            buf.clear();
            st.free.push(buf);
            return;
        }
        drop(st);
        drop(buf);
    }
}

/// Read-ahead granted by growth, over every stream of the process: a few
/// fast consumers may have it, not hundreds at once.
static GROWN_BYTES: AtomicUsize = AtomicUsize::new(0);
/// At most this much grown read-ahead in the whole process.
pub const GROWN_BUDGET: usize = 256 << 20;

/// One stream's share of [`GROWN_BYTES`], given back when released or
/// dropped.
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

    fn release(&mut self) {
        GROWN_BYTES.fetch_sub(std::mem::take(&mut self.0), Ordering::AcqRel);
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        self.release();
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
    fn lends_within_the_read_ahead_and_keeps_nothing_once_closed() {
        let s = ReadAhead::new(4, 4, 10);
        assert!(s.take(10).is_none(), "nothing lent yet");
        assert_eq!(s.wanted_after(0), 3, "the read that found none is in use");
        s.lend_for(vec![lent(10), lent(4)], 0);
        assert_eq!(s.wanted_after(0), 1);
        assert!(
            s.take(8).is_some_and(|b| b.capacity() == 10),
            "only a large enough one"
        );
        assert!(s.take(8).is_none(), "the small one does not fit");
        assert!(s.may_start(), "three reads in use, four allowed");
        let mut used = s.take(4).expect("fits");
        assert!(!s.may_start());
        assert_eq!(s.wanted_after(0), 0);
        assert!(s.lend_for(Vec::new(), 2), "room for the read held back");
        assert!(s.may_start());
        assert_eq!(s.wanted_after(0), 2, "two went to the consumer");
        used.clear();
        s.give_back(used);
        assert_eq!(s.lock().free.len(), 1);
        assert_eq!(s.wanted_after(0), 2, "given back: free instead of in use");
        let kept = s.close();
        assert_eq!(kept.len(), 1);
        assert_eq!(s.wanted_after(0), 0);
        s.lend_for(vec![lent(10)], 0);
        s.give_back(lent(10));
        assert!(s.lock().free.is_empty(), "nothing is kept once closed");
        assert!(s.take(1).is_none());
    }

    #[test]
    fn lends_no_more_than_the_reads_still_to_come() {
        let s = ReadAhead::new(8, 8, 10);
        assert_eq!(s.wanted_after(0), 8, "no bound known: the read-ahead");
        s.reads_left(Some(3));
        assert_eq!(s.wanted_after(0), 3, "three reads to come");
        s.lend_for(vec![lent(10), lent(10)], 0);
        assert_eq!(s.wanted_after(0), 1);
        let _a = s.take(10).expect("lent");
        s.reads_left(Some(2));
        assert_eq!(
            s.wanted_after(0),
            1,
            "one read started and two to come: three, two held"
        );
        s.reads_left(Some(1));
        assert_eq!(
            s.wanted_after(0),
            0,
            "one started and one to come: both held"
        );
        assert_eq!(
            s.wanted_after(1),
            0,
            "its chunk taken: the one free is enough"
        );
        s.reads_left(None);
        assert_eq!(s.wanted_after(0), 6, "the bound dropped (the file grew)");
    }

    /// The tests that use the process-wide budget run one at a time.
    static BUDGET_GATE: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn grows_to_its_maximum_within_the_process_budget_and_gives_it_back() {
        let _gate = BUDGET_GATE.lock().unwrap_or_else(|e| e.into_inner());
        let s = ReadAhead::new(4, 12, 1 << 20);
        s.grow();
        assert_eq!(s.chunks(), 8);
        s.grow();
        s.grow();
        assert_eq!(s.chunks(), 12, "never past the maximum");
        assert_eq!(s.lock().grant.0, 8 << 20);
        drop(s.close());
        assert_eq!(s.lock().grant.0, 0, "given back when the stream closes");
    }

    #[test]
    fn grants_stay_within_the_budget_and_are_given_back() {
        let _gate = BUDGET_GATE.lock().unwrap_or_else(|e| e.into_inner());
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
