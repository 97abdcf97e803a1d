//! The per-container monitor: berthd re-executed as `berthd monitor`, one small
//! single-threaded process per container (like conmon or containerd-shim).
//!
//! It creates the container init (namespaces, mounts, pivot_root, cgroup, capabilities),
//! holds the container's stdio, writes its log, serves attach and signal requests on a
//! unix socket in the exec root, and records the exit status. It outlives berthd.
//!
//! # Process
//!
//! `ExecActor` spawns `berthd monitor` with one end of a socketpair as descriptor 3 (the
//! control socket), possibly ahead of the start (a spare, spawned when a container is
//! created; a spare that gets EOF instead of a spec exits). Once it has read its spec, the
//! monitor forks once and the parent exits, so the monitor is re-parented away from
//! berthd and sits in its own session: it survives berthd. It runs
//! no async runtime and no threads, just one poll(2) loop, which keeps it small and makes
//! `fork`/`clone` safe. Its cwd is the container's state dir.
//!
//! # Control protocol (descriptor 3; one JSON document per line)
//!
//! ```text
//! berthd                               monitor
//!   Spec(ContainerSpec) [+ netns]  →      creates cgroup, stdio, clones the init (paused)
//!                                 ←    Ready{pid}      (namespaces exist)
//!   Attach([flags…]) + SCM_RIGHTS →      one connected socket per entry, served as attaches
//!   Go                            →      the init execs
//!                                 ←    Started{pid}  or  Failed{message, exec}
//!                                 ←    Exited(ExitStatus)   when the container has exited
//! ```
//!
//! berthd sends `Spec`, `Attach` and `Go` in one write without waiting for `Ready` (a
//! network namespace, made and wired by berthd, comes with the spec). The init does its mounts
//! while berthd connects the attaches; it execs only after `Go`, so no output is lost.
//! Exec failures travel from the init over a close-on-exec pipe: Docker's texts such as
//! `exec: "nosuch": executable file not found in $PATH`.
//!
//! # Socket protocol (`<state_dir>/monitor.sock`)
//!
//! A client sends one [`proto::SockRequest`] line:
//! - `Attach{stdin,stdout,stderr}` → `Ok` line, then the stream: container output as
//!   Docker stdcopy frames (`[1|2,0,0,0,len u32 BE] payload`), raw bytes with a tty;
//!   bytes written by the client go to the container's stdin; a half-close ends the
//!   container's stdin when the container has `stdin_once`. The monitor closes the
//!   connection after the container exited and its output went out.
//! - `Signal{signal}` → `Ok` or `Error{message}` (sent to the init the monitor holds as
//!   its unreaped child, so never to a reused pid).
//! - `Resize{height,width}` → `Ok` or `Error` (tty only; a no-op otherwise).
//! - `Watch` → `Running{pid}` now, `Exited(ExitStatus)` when the container exits
//!   (immediately `Exited` if it already has).
//!
//! # Exit
//!
//! The monitor reaps the init (exit code, or 128 + signal), reads the remaining output,
//! appends it to the json-file log, checks the memory cgroup for an OOM kill, removes the
//! cgroup, writes `<state_dir>/exit.json` atomically, tells berthd and watchers, lets
//! attached clients take the rest of the output, removes its socket and exits.

//!
//! # The container init
//!
//! Cloned (`clone3` into the v2 cgroup when there is one, else `clone`) with new mount,
//! pid, uts, ipc and (unless host networking or a namespace from berthd, which it joins
//! first) net namespaces; the monitor creates the v1 cgroups and moves it into them while
//! it makes its mounts (rootfs, /proc, /sys ro, /dev with its nodes,
//! /dev/pts, /dev/shm, /dev/mqueue, the extra mounts), pivots into the rootfs and masks
//! the spec's masked paths. After `Go` it resolves the user in the container's
//! /etc/passwd, sets no_new_privs if asked, installs the seccomp filter berthd compiled,
//! drops to the spec's capabilities (`monitor::security`) and execs. With
//! `--privileged` it also copies the host's device nodes into /dev and makes /sys
//! writable, and the monitor allows every device in the devices cgroup.
//! Device access: v1 `devices.allow`, or on cgroup v2 an eBPF program (same list, with
//! the devices of `--device` and the rules of `--device-cgroup-rule`), whose nodes the
//! init makes in its /dev. It sees its own cgroup read-only at /sys/fs/cgroup, bound
//! before `pivot_root` with the host's cgroup namespace, or mounted in a namespace of its
//! own once the monitor has moved it into its cgroups (`cgroup_setup`).
//!
//! # Debugging
//!
//! `BERTH_MONITOR_STDERR=<file>` (in berthd's environment) sends the monitors' stderr
//! there; `BERTH_MONITOR_TIMING=1` adds the timings of the start phases to it.

pub mod bundle;
pub mod cgroup_setup;
pub mod exec;
pub mod init;
pub mod logfile;
pub mod lookup;
pub mod proto;
pub mod reaper;
pub mod run;
pub mod runtime;
pub mod security;
pub mod settings;
pub mod spec;
pub mod user;

use std::ffi::OsString;

/// The monitor's entry point; `args` are the argv items after the word `monitor`.
/// Called by `berthd` first thing, before any thread or runtime exists.
pub fn main(args: Vec<OsString>) -> i32 {
    if let Some(a) = args.first() {
        eprintln!("berthd monitor: unexpected argument {a:?}");
        return 2;
    }
    // Nothing but stdio and the control socket may reach the container.
    crate::sys::process::close_fds_from(crate::sys::process::MONITOR_CTL_FD + 1);
    let Some(ctl) = crate::sys::process::take_monitor_ctl_fd() else {
        eprintln!("berthd monitor: no control socket on descriptor 3; started by hand?");
        return 2;
    };
    run::run(ctl)
}
