//! `no-io-uring [--errno=EPERM|ENOSYS] [--] COMMAND [ARG]...`
//!
//! Runs COMMAND with `io_uring_setup(2)` failing, the way Docker's default
//! seccomp profile, gVisor or a hardened systemd unit block io_uring, so the
//! engine's automatic fallback can be tested for real rather than by
//! pretending. The filter is a hand-written classic-BPF seccomp program:
//!
//! * a syscall from a foreign architecture (or the x32 ABI) kills the
//!   process: the syscall numbers below are only meaningful natively;
//! * `io_uring_setup` fails with EPERM (default) or ENOSYS (`--errno=ENOSYS`,
//!   what a kernel built without io_uring says);
//! * everything else is allowed.
//!
//! The filter is inherited across `execvp` and by every thread and child of
//! COMMAND. Errors (bad arguments, a kernel without seccomp, a command that
//! cannot be run) are reported on stderr with exit status 2.

#![deny(unsafe_op_in_unsafe_fn)]

use std::process::ExitCode;

fn main() -> ExitCode {
    match imp::run(std::env::args_os().skip(1).collect()) {
        Ok(never) => match never {},
        Err(msg) => {
            eprintln!("no-io-uring: {msg}");
            ExitCode::from(2)
        }
    }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod imp {
    use std::convert::Infallible;
    use std::ffi::{CString, OsString};
    use std::io;
    use std::os::unix::ffi::OsStringExt;

    use libc::sock_filter;

    /// `__AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE` from `<linux/audit.h>`.
    const AUDIT_ARCH_64BIT_LE: u32 = 0x8000_0000 | 0x4000_0000;
    /// `AUDIT_ARCH_X86_64` (`EM_X86_64` = 62).
    #[cfg(target_arch = "x86_64")]
    pub(crate) const NATIVE_ARCH: u32 = AUDIT_ARCH_64BIT_LE | 62;
    /// `AUDIT_ARCH_AARCH64` (`EM_AARCH64` = 183).
    #[cfg(target_arch = "aarch64")]
    pub(crate) const NATIVE_ARCH: u32 = AUDIT_ARCH_64BIT_LE | 183;

    /// `__X32_SYSCALL_BIT`: x32 syscalls carry `AUDIT_ARCH_X86_64` too, so
    /// they must be told apart by number.
    #[cfg(target_arch = "x86_64")]
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;

    /// `io_uring_setup` has number 425 on every architecture (the unified
    /// table introduced with Linux 5.1).
    pub(crate) const SYS_IO_URING_SETUP: u32 = 425;
    const _: () = assert!(libc::SYS_io_uring_setup as u32 == SYS_IO_URING_SETUP);

    /// `offsetof(struct seccomp_data, nr)` and `..., arch)`.
    const NR_OFFSET: u32 = std::mem::offset_of!(libc::seccomp_data, nr) as u32;
    const ARCH_OFFSET: u32 = std::mem::offset_of!(libc::seccomp_data, arch) as u32;

    /// Placeholder jump target, resolved to the final `KILL_PROCESS`.
    const TO_KILL: u8 = u8::MAX;

    const fn stmt(code: u32, k: u32) -> sock_filter {
        sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        }
    }

    const fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
        sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        }
    }

    /// The filter program; `errno` is what `io_uring_setup` returns.
    pub(crate) fn program(errno: u16) -> Vec<sock_filter> {
        use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
        let mut p = vec![
            // A = seccomp_data.arch; anything but the native ABI is killed.
            stmt(BPF_LD | BPF_W | BPF_ABS, ARCH_OFFSET),
            jump(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 0, TO_KILL),
            // A = seccomp_data.nr
            stmt(BPF_LD | BPF_W | BPF_ABS, NR_OFFSET),
        ];
        #[cfg(target_arch = "x86_64")]
        p.push(jump(
            BPF_JMP | libc::BPF_JSET | BPF_K,
            X32_SYSCALL_BIT,
            TO_KILL,
            0,
        ));
        p.extend([
            jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_IO_URING_SETUP, 0, 1),
            stmt(
                BPF_RET | BPF_K,
                libc::SECCOMP_RET_ERRNO | (u32::from(errno) & libc::SECCOMP_RET_DATA),
            ),
            stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
            stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
        ]);
        // Jump offsets count instructions after the jump itself.
        let kill = p.len() - 1;
        for (i, ins) in p.iter_mut().enumerate().take(kill) {
            let to_kill = (kill - i - 1) as u8;
            if ins.jt == TO_KILL {
                ins.jt = to_kill;
            }
            if ins.jf == TO_KILL {
                ins.jf = to_kill;
            }
        }
        p
    }

    fn parse_errno(value: &str) -> Result<u16, String> {
        match value {
            "EPERM" => Ok(libc::EPERM as u16),
            "ENOSYS" => Ok(libc::ENOSYS as u16),
            other => Err(format!("--errno must be EPERM or ENOSYS, not {other:?}")),
        }
    }

    /// Splits the arguments into the errno to return and the command.
    pub(crate) fn parse(args: Vec<OsString>) -> Result<(u16, Vec<OsString>), String> {
        let mut errno = libc::EPERM as u16;
        let mut rest = args.into_iter().peekable();
        while let Some(arg) = rest.peek() {
            let Some(s) = arg.to_str() else { break };
            if s == "--" {
                rest.next();
                break;
            }
            if let Some(v) = s.strip_prefix("--errno=") {
                errno = parse_errno(v)?;
                rest.next();
            } else if s.starts_with("--") {
                return Err(format!("unknown option {s:?}"));
            } else {
                break;
            }
        }
        let command: Vec<OsString> = rest.collect();
        if command.is_empty() {
            return Err("usage: no-io-uring [--errno=EPERM|ENOSYS] [--] COMMAND [ARG]...".into());
        }
        Ok((errno, command))
    }

    fn install(errno: u16) -> io::Result<()> {
        let mut filter = program(errno);
        let prog = libc::sock_fprog {
            len: filter.len() as libc::c_ushort,
            filter: filter.as_mut_ptr(),
        };
        // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only. It is
        // required for an unprivileged process to install a filter, and it
        // only stops COMMAND from gaining privileges via setuid binaries.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // The process is single-threaded here (nothing has spawned a thread),
        // so filtering the calling thread filters the whole of COMMAND.
        // SAFETY: `prog` points to `filter`, a live, correctly sized array
        // of sock_filter that outlives the call (the kernel copies it).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
                0 as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if ret == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOSYS) {
            return Err(err);
        }
        // Kernels before 3.17 have no seccomp(2): the prctl form does the same.
        // SAFETY: as above; `prog` is valid for the duration of the call.
        let ret = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if ret == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn run(args: Vec<OsString>) -> Result<Infallible, String> {
        let (errno, command) = parse(args)?;
        let cargs: Vec<CString> = command
            .into_iter()
            .map(|a| {
                CString::new(a.into_vec())
                    .map_err(|_| "an argument contains a NUL byte".to_string())
            })
            .collect::<Result<_, _>>()?;
        let mut argv: Vec<*const libc::c_char> = cargs.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        install(errno).map_err(|e| format!("cannot install the seccomp filter: {e}"))?;
        // SAFETY: argv is a NULL-terminated array of pointers to the
        // NUL-terminated strings in `cargs`, all alive across the call;
        // argv[0] is the program to run. execvp only returns on failure.
        unsafe { libc::execvp(argv[0], argv.as_ptr()) };
        Err(format!(
            "cannot run {:?}: {}",
            cargs[0],
            io::Error::last_os_error()
        ))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn jumps_land_on_the_right_returns() {
            for errno in [libc::EPERM as u16, libc::ENOSYS as u16] {
                let p = program(errno);
                let last = p.len() - 1;
                assert_eq!(
                    u32::from(p[last].code),
                    libc::BPF_RET | libc::BPF_K,
                    "program ends in a return"
                );
                assert_eq!(p[last].k, libc::SECCOMP_RET_KILL_PROCESS);
                // The arch check's false branch is the kill.
                assert_eq!(1 + 1 + usize::from(p[1].jf), last);
                // The io_uring_setup comparison: equal -> errno, else allow.
                let cmp = p
                    .iter()
                    .position(|i| i.k == SYS_IO_URING_SETUP)
                    .expect("compares against io_uring_setup");
                let hit = &p[cmp + 1 + usize::from(p[cmp].jt)];
                let miss = &p[cmp + 1 + usize::from(p[cmp].jf)];
                assert_eq!(hit.k, libc::SECCOMP_RET_ERRNO | u32::from(errno));
                assert_eq!(miss.k, libc::SECCOMP_RET_ALLOW);
                // Every jump stays inside the program.
                for (i, ins) in p.iter().enumerate() {
                    if u32::from(ins.code) & 0x07 == libc::BPF_JMP {
                        assert!(i + 1 + usize::from(ins.jt.max(ins.jf)) <= last);
                    }
                }
            }
        }

        #[test]
        fn parses_arguments() {
            let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
            assert_eq!(
                parse(os(&["true"])),
                Ok((libc::EPERM as u16, os(&["true"])))
            );
            assert_eq!(
                parse(os(&["--errno=ENOSYS", "--", "ls", "--all"])),
                Ok((libc::ENOSYS as u16, os(&["ls", "--all"])))
            );
            assert!(parse(os(&["--errno=EBADF", "true"])).is_err());
            assert!(parse(os(&["--frobnicate", "true"])).is_err());
            assert!(parse(os(&[])).is_err());
            assert!(parse(os(&["--errno=ENOSYS"])).is_err());
        }
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod imp {
    use std::convert::Infallible;
    use std::ffi::OsString;

    pub fn run(_args: Vec<OsString>) -> Result<Infallible, String> {
        Err("unsupported: seccomp filtering of io_uring needs Linux on x86_64 or aarch64".into())
    }
}
