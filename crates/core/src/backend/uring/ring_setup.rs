//! What the engine's ring is set up with: the opcodes it needs (a kernel
//! missing one gets the fallback backend), those it uses when present, and
//! the cap on its io-wq workers.

use io_uring::{opcode, IoUring, Probe};

/// The opcodes the engine needs; a kernel missing one gets the fallback.
pub(super) const NEEDED: &[(u8, &str)] = &[
    (opcode::Read::CODE, "read"),
    (opcode::OpenAt::CODE, "openat"),
    (opcode::Statx::CODE, "statx"),
    (opcode::Close::CODE, "close"),
    (opcode::AsyncCancel::CODE, "async_cancel"),
    (opcode::Writev::CODE, "writev"),
    (opcode::Fsync::CODE, "fsync"),
];

/// Opcodes the engine uses when the kernel has them (all since 5.6) and
/// replaces with plain system calls when it does not.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OptionalOps {
    /// SPLICE, SEND and POLL_ADD: the zero-copy body of `send_body`.
    pub splice_body: bool,
    /// OPENAT2: `open_beneath`.
    pub openat2: bool,
}

impl OptionalOps {
    pub(super) fn of(probe: &Probe) -> OptionalOps {
        OptionalOps {
            splice_body: probe.is_supported(opcode::Splice::CODE)
                && probe.is_supported(opcode::Send::CODE)
                && probe.is_supported(opcode::PollAdd::CODE),
            openat2: probe.is_supported(opcode::OpenAt2::CODE),
        }
    }
}

/// Caps the io-wq workers that run this ring's large reads at one per core
/// this process may run on. The reads are IOSQE_ASYNC, which the kernel
/// queues before it looks at the file, so they count as unbounded work,
/// whose workers are otherwise limited only by RLIMIT_NPROC: a 1 MiB-chunk
/// stream keeps about twelve reads in flight, and 7 to 13 workers copied at
/// once on two cores, every read finishing late and many of them together.
/// One worker per core takes the reads in turn, and faster: 1 GiB cached,
/// 1 MiB chunks, 8 interleaved runs of `node benches/read-stream.js` each,
/// 6.57 GiB/s against 6.03 (medians), 1.64x fs against 1.45x. Reads that
/// wait for the disk were no slower (1 GiB dropped from the cache: 1.90 and
/// 2.05 GiB/s, against 1.86 and 1.92). Nothing waits in these workers
/// without end: the other unbounded work is non-blocking splices, and io-wq
/// hands a read of an empty pipe to the poller. Bounded work (statx, opens)
/// keeps the kernel's default. Registered before any submission, the limit
/// holds for every thread that submits to the ring. Failing (a kernel
/// before 5.15) changes nothing but speed.
pub(super) fn cap_iowq_workers(ring: &IoUring) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // [bounded, unbounded]; 0 leaves a limit as it is.
    let mut limits = [0, u32::try_from(cores).unwrap_or(u32::MAX)];
    let _ = ring.submitter().register_iowq_max_workers(&mut limits);
}
