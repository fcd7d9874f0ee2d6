//! JavaScript memory lent to the kernel, the descriptors opened for an
//! environment, and the order in which both are let go when the
//! environment goes away.
//!
//! A read stream's chunks, `readFile`'s large Buffer and the Buffers a
//! write is made from are JavaScript memory the kernel (or a pool thread)
//! writes into or reads from while JavaScript runs on. A napi reference
//! keeps such a Buffer alive for as long as the engine holds it, but not
//! past its environment: when a worker thread is terminated, V8 frees every
//! Buffer of that isolate, referenced or not, and a read still in flight
//! then writes into freed memory (seen: glibc aborting on a corrupted heap
//! after workers with 1 MiB-chunk streams were terminated mid-stream).
//!
//! So every such use holds a [`LentGuard`], counted per environment, and
//! the environment's one cleanup hook (which runs before its isolate is
//! torn down, whether the worker was terminated or called
//! `process.exit()`) goes in this order:
//!
//! 1. it stops what can be stopped ([`on_teardown`]): read streams cancel
//!    their reads (and close the descriptors they opened), the thread's
//!    own ring (`crate::loop_ops`) waits for its writes, cancelling them
//!    if they do not finish, and drops them;
//! 2. it waits until every guard is dropped. Each guard left then belongs
//!    to an operation in the kernel or on a pool thread that completes on
//!    its own (or was cancelled), never to work this thread would have to
//!    do: this thread runs no JavaScript, no libuv callback any more. (The
//!    ring's writes were such work, reaped only by a libuv callback on this
//!    thread: a hook of their own, added before this one and so run after
//!    it, left the wait hanging forever after a `process.exit()` with a
//!    write stream's batch in flight.)
//! 3. it closes the descriptors opened for the environment and not closed
//!    by it ([`fds`]): as Node closes every descriptor fs opened in a
//!    worker when the worker ends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex};

use napi::{sys, Env};
use uring_fs_core::OwnedFds;

/// Lent memory in use, for one environment.
#[derive(Default)]
struct Outstanding {
    count: Mutex<usize>,
    none: Condvar,
}

/// One use of lent memory; dropped once the kernel is done with it.
pub(crate) struct LentGuard(Arc<Outstanding>);

impl Drop for LentGuard {
    fn drop(&mut self) {
        let mut n = self.0.count.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.0.none.notify_all();
        }
    }
}

struct Registry {
    outstanding: Arc<Outstanding>,
    /// What stops an operation early at teardown, by id.
    stoppers: HashMap<u64, Box<dyn FnOnce()>>,
    next_id: u64,
    /// Descriptors opened for this environment and not closed by it.
    fds: Arc<OwnedFds>,
    /// The cleanup hook has run: a stopper registered now runs at once.
    torn_down: bool,
}

thread_local! {
    /// This thread's environment's registry, made (and its cleanup hook
    /// added) on first use. It stays after teardown (marked), so that
    /// finalizers that run later find it and add no second hook.
    static REGISTRY: RefCell<Option<Registry>> = const { RefCell::new(None) };
}

fn with_registry<R>(env: &Env, f: impl FnOnce(&mut Registry) -> R) -> R {
    REGISTRY.with(|cell| {
        let mut slot = cell.borrow_mut();
        let reg = slot.get_or_insert_with(|| {
            // SAFETY: env is this thread's live environment; the hook runs
            // on this thread before the environment goes away.
            unsafe {
                sys::napi_add_env_cleanup_hook(env.raw(), Some(cleanup), std::ptr::null_mut())
            };
            Registry {
                outstanding: Arc::default(),
                stoppers: HashMap::new(),
                next_id: 0,
                fds: Arc::new(OwnedFds::new()),
                torn_down: false,
            }
        });
        f(reg)
    })
}

/// A guard for one use of this environment's memory by the kernel.
pub(crate) fn guard(env: &Env) -> LentGuard {
    with_registry(env, |reg| {
        let mut n = reg
            .outstanding
            .count
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *n += 1;
        LentGuard(reg.outstanding.clone())
    })
}

/// Registers `stop`, called at teardown unless [`forget`] came first;
/// returns its id. Once the environment is torn down, `stop` runs now.
pub(crate) fn on_teardown(env: &Env, stop: Box<dyn FnOnce()>) -> u64 {
    let late = with_registry(env, |reg| {
        if reg.torn_down {
            return Err(stop);
        }
        reg.next_id += 1;
        reg.stoppers.insert(reg.next_id, stop);
        Ok(reg.next_id)
    });
    // Run with no borrow of the registry held: a stopper may forget another.
    late.unwrap_or_else(|stop| {
        stop();
        0
    })
}

/// Drops the stopper `id` (its operation is over).
pub(crate) fn forget(id: u64) {
    let stop = REGISTRY.with(|cell| {
        cell.borrow_mut()
            .as_mut()
            .and_then(|reg| reg.stoppers.remove(&id))
    });
    drop(stop);
}

/// The descriptors opened for this environment: adopted when the engine
/// opens one for it, released by whoever closes one (see
/// [`uring_fs_core::owned_fds`]), and closed at teardown.
pub(crate) fn fds(env: &Env) -> Arc<OwnedFds> {
    with_registry(env, |reg| reg.fds.clone())
}

/// The environment is going away. Runs on its thread, from C: a panic
/// must not cross (it would abort the process), so none is let out.
extern "C" fn cleanup(_arg: *mut c_void) {
    let _ = std::panic::catch_unwind(teardown);
}

/// Stop what can be stopped, wait for the kernel to be done with every
/// lent Buffer, then close the environment's descriptors (the module doc
/// says why in this order).
fn teardown() {
    let taken = REGISTRY.with(|cell| {
        let mut slot = cell.borrow_mut();
        let reg = slot.as_mut()?;
        reg.torn_down = true;
        Some((
            std::mem::take(&mut reg.stoppers),
            reg.outstanding.clone(),
            reg.fds.clone(),
        ))
    });
    let Some((stoppers, outstanding, fds)) = taken else {
        return;
    };
    for (_, stop) in stoppers {
        // One stopper's panic must not skip the wait below.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(stop));
    }
    {
        let mut n = outstanding.count.lock().unwrap_or_else(|e| e.into_inner());
        while *n > 0 {
            n = outstanding.none.wait(n).unwrap_or_else(|e| e.into_inner());
        }
    }
    // No write from this environment's memory is in flight any more (each
    // holds a guard), so none can reach one of these numbers once it is
    // closed and reused. (A read stream's own descriptor is not here: its
    // pump closes it, after its reads, as its stopper asked.)
    fds.close_all();
}
