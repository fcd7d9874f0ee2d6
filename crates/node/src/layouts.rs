//! The layouts of the typed arrays the hot paths hand across, described
//! once, here. Where a call returns many numbers per file or per request
//! (statFiles' stats, readFiles' places, a served file's open, an inline
//! send), one typed array crosses instead of an object: each property of an
//! object built through napi is a call, and for statFiles the objects cost
//! more than the statx calls themselves. Each layout is a `#[napi]` enum:
//! the generated `binding.d.ts` declares it as a `const enum`, which tsc
//! inlines into `lib/` as plain numbers, so JavaScript indexes the array by
//! name at no cost, and a slot added or moved here moves there too.

use napi_derive::napi;

/// One path's numbers in statFiles' `Float64Array`, in the order of Node's
/// own stat array. After every path's numbers comes one number per path:
/// 0, or the `-errno` of its failure.
#[napi]
pub enum StatSlot {
    Dev,
    Mode,
    Nlink,
    Uid,
    Gid,
    Rdev,
    Blksize,
    Ino,
    Size,
    Blocks,
    AtimeSec,
    AtimeNsec,
    MtimeSec,
    MtimeNsec,
    CtimeSec,
    CtimeNsec,
    BirthtimeSec,
    BirthtimeNsec,
    /// Numbers per path.
    Count,
}

/// One file's place in readFiles' `layout` (an `Int32Array`): the shared
/// block its bytes are in (-1: its own Buffer or its error, the next entry
/// of `others`), their offset there and their length.
#[napi]
pub enum FileSlot {
    Block,
    Offset,
    Length,
    /// Numbers per file.
    Count,
}

/// `OpenFileCache.open`'s result: the entry's id (-1: not cached, serve it
/// the usual way), whether it is an entry for a missing path (1) or a
/// file (0), the descriptor it keeps (-1: it keeps the bytes), and the
/// file's stat.
#[napi]
pub enum CachedSlot {
    Id,
    Missing,
    Fd,
    Size,
    Mode,
    MtimeSec,
    MtimeNsec,
    Ino,
    Count,
}

/// `openServedCached`'s result: the descriptor (-1 on failure or for
/// anything but a regular file), the open's `-errno` or 0, and the stat.
#[napi]
pub enum ServedSlot {
    Fd,
    Errno,
    Size,
    Mode,
    MtimeSec,
    MtimeNsec,
    Ino,
    /// Numbers in all.
    Count,
}

/// `sendInline`'s result: bytes of the head and of the body sent, the
/// failure's `-errno` or 0, and the failed call ([`SentSyscall`]).
#[napi]
pub enum SentSlot {
    HeadSent,
    BodySent,
    Errno,
    Syscall,
    /// Numbers in all.
    Count,
}

/// The call a failed inline send names, in [`SentSlot::Syscall`].
#[napi]
pub enum SentSyscall {
    None,
    Write,
    Read,
}
