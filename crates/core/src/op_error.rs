//! An I/O error tagged with the system call that failed, which is what a
//! Node-style error needs (`err.syscall`) and what a plain `io::Error`
//! cannot say once several calls (open, fstat, read, close) ran for one
//! request.

use std::io;

/// Which system call failed, for Node-style errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    Open,
    Read,
    Close,
    Fstat,
    Write,
    Fsync,
}

impl Syscall {
    pub fn name(self) -> &'static str {
        match self {
            Syscall::Open => "open",
            Syscall::Read => "read",
            Syscall::Close => "close",
            Syscall::Fstat => "fstat",
            Syscall::Write => "write",
            Syscall::Fsync => "fsync",
        }
    }
}

#[derive(Debug)]
pub struct OpError {
    pub syscall: Syscall,
    pub error: io::Error,
}
