//! `--init`: the container's pid 1 stays a small reaper and the command runs as its child,
//! as under dockerd's docker-init (tini).
//!
//! The reaper is the container init itself, forked at the point where it would exec the
//! command: the child execs, the parent keeps running berthd's code already in memory. It
//! forwards every signal it gets to the command, reaps every process that ends up as its
//! child (orphans are re-parented to pid 1), and exits with the command's status (128 + the
//! signal when a signal ended it). It is not a re-exec of berthd: berthd is dynamically
//! linked, and a container's root holds neither its loader nor its libraries.

use std::ffi::CString;
use std::os::fd::RawFd;

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::sys::process::{self, Forked};

/// What the command's child process reports when its exec fails.
pub type ExecFailure = String;

/// Forks: in the child, returns `Ok(())` once it is ready to exec the command (its own
/// process group, the terminal's foreground group with a tty, every signal unblocked);
/// the parent never returns: it reaps until the command exits, then exits with its status.
///
/// `err_pipe` is the init's end of the error pipe, which the parent closes so that the
/// monitor sees the pipe close at the child's exec. `title` is what `ps` shows for pid 1.
pub fn fork_reaper(err_pipe: RawFd, title: &str, tty: bool) -> Result<(), ExecFailure> {
    let fail = |e: crate::sys::SysError| crate::util::error_chain(&e);
    // Blocked before the fork, so that nothing sent to the reaper before its loop is lost.
    process::block_all_signals().map_err(fail)?;
    match process::fork().map_err(fail)? {
        Forked::Child => {
            process::own_process_group(tty.then_some(0)).map_err(fail)?;
            process::unblock_all_signals().map_err(fail)?;
            Ok(())
        }
        Forked::Parent { child } => {
            process::close_inherited(err_pipe);
            nix::sys::prctl::set_name(c"berthd-init").ok();
            process::set_title(title);
            process::exit_now(reap(child))
        }
    }
}

/// The title of the reaper: `berthd-init -- <the command's argv>`.
pub fn title(argv: &[CString]) -> String {
    let mut t = String::from("berthd-init --");
    for a in argv {
        t.push(' ');
        t.push_str(&a.to_string_lossy());
    }
    t
}

/// Forwards signals to `child` and reaps until it has exited; returns its exit status.
fn reap(child: i32) -> i32 {
    let child_pid = Pid::from_raw(child);
    loop {
        let sig = match process::wait_signal() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != libc::SIGCHLD {
            let _ = process::kill(child, sig);
            continue;
        }
        let mut status = None;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == child_pid => status = Some(code),
                Ok(WaitStatus::Signaled(p, s, _)) if p == child_pid => {
                    status = Some(128 + s as i32);
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if let Some(code) = status {
            return code;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_names_the_command() {
        let argv = [c"sleep".to_owned(), c"100".to_owned()];
        assert_eq!(title(&argv), "berthd-init -- sleep 100");
    }
}
