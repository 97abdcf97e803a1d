//! `NetNs`: a berthd in a network namespace of its own, for tests that need a bridge.
//!
//! A thread unshares its network namespace, starts a holder process (`sleep`) that keeps
//! the namespace alive, runs the test's preparation commands there (with `lo` up) and
//! starts the daemon, which inherits the namespace; then the thread ends, so the test's
//! other threads stay in the host's namespace. The bridge, veths, iptables rules and the
//! `ip_forward` sysctl the daemon touches are the namespace's own. Drop stops the daemon,
//! deletes the bridge, flushes the namespace's iptables tables and kills the holder, the
//! namespace's last process, so that nothing is left even when the test fails.
//! Include it with
//! `#[path = "common/netns.rs"] mod netns;` beside `mod common;`.

#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Child, Command, Output, Stdio};

use crate::common::{Opts, TestDaemon};

#[derive(Debug)]
pub struct NetNs {
    daemon: Option<TestDaemon>,
    holder: Child,
    bridge: String,
}

fn sh(cmd: &mut Command) -> Output {
    cmd.output().expect("run command")
}

impl NetNs {
    /// Starts berthd with `args` in a new network namespace whose bridge is `bridge`;
    /// `prepare` runs there first (e.g. `ip link add`).
    pub fn start(bridge: &str, args: &[&str], prepare: &[&[&str]]) -> NetNs {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let prepare: Vec<Vec<String>> = prepare
            .iter()
            .map(|c| c.iter().map(|s| (*s).to_owned()).collect())
            .collect();
        let (holder, daemon) = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let holder = Command::new("sleep")
                .arg("3600")
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            let run = |c: &[String]| {
                let out = sh(Command::new(&c[0]).args(&c[1..]));
                assert!(out.status.success(), "{c:?}: {out:?}");
            };
            run(&["ip", "link", "set", "lo", "up"].map(String::from));
            for c in &prepare {
                run(c);
            }
            let daemon = TestDaemon::start_with(Opts {
                args,
                ..Opts::default()
            });
            (holder, daemon)
        })
        .join()
        .unwrap();
        NetNs {
            daemon: Some(daemon),
            holder,
            bridge: bridge.to_owned(),
        }
    }

    /// Stops the daemon and starts it again with `args` in the same namespace (from a
    /// thread that enters it).
    pub fn restart(&mut self, args: &[&str]) {
        self.restart_after(args, false);
    }

    /// SIGKILLs the daemon (a crash) and starts it again with `args`, as `restart`.
    pub fn crash_and_restart(&mut self, args: &[&str]) {
        self.restart_after(args, true);
    }

    fn restart_after(&mut self, args: &[&str], crash: bool) {
        let mut d = self.daemon.take().unwrap();
        if crash {
            d.kill();
        } else {
            d.stop();
        }
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let ns = format!("/proc/{}/ns/net", self.holder.id());
        let d = std::thread::spawn(move || {
            let f = std::fs::File::open(ns).unwrap();
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            d.restart(&Opts {
                args,
                ..Opts::default()
            });
            d
        })
        .join()
        .unwrap();
        self.daemon = Some(d);
    }

    pub fn d(&self) -> &TestDaemon {
        self.daemon.as_ref().unwrap()
    }

    pub fn d_mut(&mut self) -> &mut TestDaemon {
        self.daemon.as_mut().unwrap()
    }

    /// Whether the link `name` exists in the daemon's network namespace.
    pub fn link_exists(&self, name: &str) -> bool {
        self.ns(&["ip", "link", "show", "dev", name])
            .status
            .success()
    }

    /// The pid of the process that holds the namespace (for `nsenter --net=/proc/PID/ns/net`).
    pub fn holder_pid(&self) -> u32 {
        self.holder.id()
    }

    /// A command run in the daemon's network namespace.
    pub fn ns(&self, args: &[&str]) -> Output {
        sh(Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", self.holder.id()))
            .args(args))
    }

    pub fn ns_ok(&self, args: &[&str]) -> String {
        let out = self.ns(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every rule of iptables table `table` in the namespace.
    pub fn rules(&self, table: &str) -> String {
        self.ns_ok(&["iptables", "-w", "-t", table, "-S"])
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        drop(self.daemon.take());
        let _ = self.ns(&["ip", "link", "del", "dev", &self.bridge]);
        for table in ["nat", "filter"] {
            let _ = self.ns(&["iptables", "-w", "-t", table, "-F"]);
            let _ = self.ns(&["iptables", "-w", "-t", table, "-X"]);
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
