//! JavaScript memory lent to the kernel, and the wait for it before the
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
//! the environment's cleanup hook (which runs before its isolate is torn
//! down) first stops what can be stopped ([`on_teardown`]: read streams
//! cancel their reads) and then waits until every guard is dropped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex};

use napi::{sys, Env};

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
}

thread_local! {
    /// This thread's environment's registry, made (and its cleanup hook
    /// added) on first use.
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
/// returns its id.
pub(crate) fn on_teardown(env: &Env, stop: Box<dyn FnOnce()>) -> u64 {
    with_registry(env, |reg| {
        reg.next_id += 1;
        reg.stoppers.insert(reg.next_id, stop);
        reg.next_id
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

/// The environment is going away: stop what can be stopped, then wait for
/// the kernel to be done with every lent Buffer.
extern "C" fn cleanup(_arg: *mut c_void) {
    let Some(reg) = REGISTRY.with(|cell| cell.borrow_mut().take()) else {
        return;
    };
    for (_, stop) in reg.stoppers {
        stop();
    }
    let mut n = reg
        .outstanding
        .count
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    while *n > 0 {
        n = reg
            .outstanding
            .none
            .wait(n)
            .unwrap_or_else(|e| e.into_inner());
    }
}
