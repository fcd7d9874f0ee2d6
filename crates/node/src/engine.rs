//! The process-wide engine: one tokio runtime (one worker thread, which runs
//! the ring's driver task and every stream's pump) and one backend, started
//! on first use. A start that fails is not remembered: the next call tries
//! again (a process out of descriptors at its first call recovers, as fs
//! does, once some are closed).

use std::sync::{Mutex, OnceLock};

use napi::{Error, Result, Status};
use tokio::runtime::Runtime;
use uring_fs_core::{Choice, Engine};

pub(crate) struct Global {
    pub rt: Runtime,
    pub engine: Engine,
}

static GLOBAL: OnceLock<Global> = OnceLock::new();
/// Held while starting, so that two threads never start two engines.
static STARTING: Mutex<()> = Mutex::new(());

fn start() -> std::result::Result<Global, String> {
    let choice = Choice::from_env().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(128)
        .thread_name("uring-fs")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the uring-fs runtime: {e}"))?;
    let engine = rt
        .block_on(async { Engine::start(choice) })
        .map_err(|e| format!("cannot start the uring-fs engine: {e}"))?;
    Ok(Global { rt, engine })
}

/// The running engine, or the reason it could not start this time.
pub(crate) fn global() -> Result<&'static Global> {
    if let Some(g) = GLOBAL.get() {
        return Ok(g);
    }
    // A panic while starting poisons nothing we rely on: the lock guards no data.
    let _starting = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(g) = GLOBAL.get() {
        return Ok(g);
    }
    let started = start().map_err(|why| Error::new(Status::GenericFailure, why))?;
    Ok(GLOBAL.get_or_init(|| started))
}
