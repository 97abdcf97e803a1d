//! The bridge network, driven by the real docker CLI against a real berthd: addresses,
//! the gateway, container-to-container traffic, --icc=false, iptables rules while running
//! and none after shutdown, veths removed, inspect. Root only.
//!
//! Isolation: each test's berthd runs in a network namespace of its own (made by
//! `tests/common/netns.rs`'s [`NetNs`]: a thread unshares its network namespace, starts a holder process and the
//! daemon, and ends). Its bridge, veths and iptables rules live only there, so parallel
//! tests (and the host's own firewall) never see each other's rules, and the namespace
//! vanishes with its last process: the Drop guard stops the daemon, deletes the bridge,
//! runs the chain cleanup and kills the holder. On top of that each test has its own
//! bridge name or subnet (10.199.N.0/24, N unique in this file).
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::time::{Duration, Instant};

use common::TestDaemon;
use netns::NetNs;

fn unique_bridge() -> String {
    format!("bt{:08x}", rand::random::<u32>())
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn inspect(d: &TestDaemon, id: &str, format: &str) -> String {
    d.docker_ok(&["inspect", "-f", format, id])
        .trim()
        .to_owned()
}

/// A new container on the default network pings `ip` once (the docker CLI fails otherwise).
fn ping_from_a_container(d: &TestDaemon, ip: &str) {
    d.docker_ok(&["run", "--rm", "busybox", "ping", "-c1", "-W2", ip]);
}

#[test]
fn default_bridge_gives_addresses_gateway_and_container_traffic() {
    require_root!();
    let n = NetNs::start("berth0", &["--bip", "10.199.41.1/24"], &[]);
    let d = n.d();
    d.import_busybox();

    // eth0 with an address in the subnet, and the gateway answers.
    let addr = d.docker_ok(&["run", "--rm", "busybox", "ip", "addr"]);
    assert!(addr.contains("eth0"), "{addr}");
    assert!(addr.contains("inet 10.199.41."), "{addr}");
    assert!(addr.contains("link/ether 02:42:0a:c7:29:"), "{addr}");
    ping_from_a_container(d, "10.199.41.1");
    let route = d.docker_ok(&["run", "--rm", "busybox", "ip", "route"]);
    assert!(
        route.contains("default via 10.199.41.1 dev eth0"),
        "{route}"
    );

    // Bridge set up as asked; MASQUERADE and forwarding rules in our own chains.
    let br = n.ns_ok(&["ip", "-4", "addr", "show", "dev", "berth0"]);
    assert!(br.contains("inet 10.199.41.1/24"), "{br}");
    assert_eq!(
        n.ns_ok(&["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "1"
    );
    let nat = n.rules("nat");
    assert!(
        nat.contains("-A POSTROUTING -s 10.199.41.0/24 ! -o berth0 -j MASQUERADE"),
        "{nat}"
    );
    assert!(nat.contains("-N BERTH"), "{nat}");
    let filter = n.rules("filter");
    assert!(filter.contains("-A FORWARD -j BERTH-FORWARD"), "{filter}");
    assert!(
        filter.contains("-A BERTH-FORWARD -i berth0 -o berth0 -j ACCEPT"),
        "{filter}"
    );
    assert!(!nat.contains("DOCKER") && !filter.contains("DOCKER"));

    // Two containers talk by IP.
    let srv = d
        .docker_ok(&["run", "-d", "--name", "srv", "busybox", "sh", "-c", SERVE])
        .trim()
        .to_owned();
    let ip = inspect(d, "srv", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with("10.199.41."), "{ip}");
    assert_eq!(
        inspect(d, "srv", "{{.NetworkSettings.Gateway}}"),
        "10.199.41.1"
    );
    assert_eq!(inspect(d, "srv", "{{.NetworkSettings.IPPrefixLen}}"), "24");
    assert_eq!(
        inspect(d, "srv", "{{.NetworkSettings.Networks.bridge.IPAddress}}"),
        ip
    );
    let mac = inspect(d, "srv", "{{.NetworkSettings.Networks.bridge.MacAddress}}");
    assert!(mac.starts_with("02:42:0a:c7:29:"), "{mac}");
    assert_eq!(inspect(d, "srv", "{{.NetworkSettings.Bridge}}"), "berth0");
    let hosts =
        std::fs::read_to_string(d.data_root.join("containers").join(&srv).join("hosts")).unwrap();
    assert!(hosts.contains(&format!("{ip}\t{}", &srv[..12])), "{hosts}");
    let got = wait_for_http(d, &ip);
    assert_eq!(got.trim(), &srv[..12]);

    // The host side of srv's veth (its eth0's peer) is on the bridge, and goes when srv
    // does. (The bridge may have other veths: namespaces made ahead of starts.)
    let peer = d.docker_ok(&["logs", "srv"]);
    let peer = format!("{}: veth", peer.lines().next().unwrap_or("?").trim());
    let on_bridge = || n.ns_ok(&["ip", "-o", "link", "show", "master", "berth0"]);
    assert!(
        on_bridge().lines().any(|l| l.starts_with(&peer)),
        "{peer}: {}",
        on_bridge()
    );
    d.docker_ok(&["rm", "-f", "srv"]);
    wait_until("srv's veth gone from the bridge", || {
        !on_bridge().lines().any(|l| l.starts_with(&peer))
    });

    // Its address is free again for the next container (after the others in line).
    let again = d.docker_ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "grep $(hostname) /etc/hosts",
    ]);
    assert!(again.starts_with("10.199.41."), "{again}");

    // After the daemon stops: no rule of ours left; the bridge stays, as docker0 does.
    let mut n = n;
    n.d_mut().stop();
    let nat = n.rules("nat");
    let filter = n.rules("filter");
    assert!(
        !nat.contains("BERTH") && !nat.contains("MASQUERADE"),
        "{nat}"
    );
    assert!(!filter.contains("BERTH"), "{filter}");
    assert!(n.link_exists("berth0"));
}

/// Serves the container's hostname over HTTP on port 8080. Prints first the interface
/// index of its eth0's peer (the host side of its veth).
const SERVE: &str = concat!(
    "cat /sys/class/net/eth0/iflink; ",
    "mkdir -p /www && hostname > /www/hostname && exec httpd -f -p 8080 -h /www"
);

/// The shell command that fetches `url` within 3 s. Not `wget -T` (Debian's busybox 1.35
/// crashes with it), and `timeout` under a shell that does not exec it (`; exit`): as
/// pid 1, wget would ignore the SIGTERM.
fn fetch_cmd(url: &str) -> String {
    format!("timeout 3 wget -q -O - {url}; exit $?")
}

/// `wget` from a fresh container until srv's httpd answers (it may still be starting).
fn wait_for_http(d: &TestDaemon, ip: &str) -> String {
    let url = format!("http://{ip}:8080/hostname");
    let fetch = fetch_cmd(&url);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", &fetch]);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "wget {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn existing_bridge_with_icc_false_blocks_container_traffic() {
    require_root!();
    let br = unique_bridge();
    let n = NetNs::start(
        &br,
        &["-b", &br, "--icc=false"],
        &[
            &["ip", "link", "add", &br, "type", "bridge"],
            &["ip", "addr", "add", "10.199.42.1/24", "dev", &br],
        ],
    );
    let d = n.d();
    d.import_busybox();
    let filter = n.rules("filter");
    let chain = format!("BERTH-F-{br}");
    assert!(
        filter.contains(&format!("-A {chain} -i {br} -o {br} -j DROP")),
        "{filter}"
    );
    assert!(n.rules("nat").contains(&format!(
        "-A POSTROUTING -s 10.199.42.0/24 ! -o {br} -j MASQUERADE"
    )));
    d.docker_ok(&["run", "-d", "--name", "srv", "busybox", "sh", "-c", SERVE]);
    let ip = inspect(d, "srv", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with("10.199.42."), "{ip}");
    // The gateway (the host) is still reachable, and srv answers from the host...
    ping_from_a_container(d, "10.199.42.1");
    let url = format!("http://{ip}:8080/hostname");
    let fetch = fetch_cmd(&url);
    wait_until("srv's httpd to answer the host", || {
        n.ns(&["timeout", "2", "busybox", "wget", "-q", "-O", "-", &url])
            .status
            .success()
    });
    // ...but not another container.
    let out = d.docker(&["run", "--rm", "busybox", "sh", "-c", &fetch]);
    assert!(
        !out.status.success(),
        "icc=false let traffic through: {out:?}"
    );
    d.docker_ok(&["rm", "-f", "srv"]);

    let mut n = n;
    n.d_mut().stop();
    assert!(!n.rules("filter").contains("BERTH"));
    assert!(!n.rules("nat").contains("BERTH"));
    assert!(n.link_exists(&br));
}

#[test]
fn running_container_keeps_its_address_across_a_live_restore() {
    require_root!();
    let mut n = NetNs::start(
        "berth0",
        &["--bip", "10.199.43.1/24", "--live-restore"],
        &[],
    );
    n.d().import_busybox();
    n.d()
        .docker_ok(&["run", "-d", "--name", "keep", "busybox", "sleep", "600"]);
    let ip = inspect(n.d(), "keep", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with("10.199.43."), "{ip}");
    n.restart(&["--bip", "10.199.43.1/24", "--live-restore"]);
    // The restart found its rules in place and added none twice.
    let rules = format!("{}{}", n.rules("nat"), n.rules("filter"));
    for rule in [
        "-A POSTROUTING -s 10.199.43.0/24 ! -o berth0 -j MASQUERADE",
        "-A FORWARD -j BERTH-FORWARD",
        "-A BERTH-FORWARD -i berth0 -o berth0 -j ACCEPT",
        "-A PREROUTING -m addrtype --dst-type LOCAL -j BERTH",
    ] {
        assert_eq!(rules.matches(rule).count(), 1, "{rule} in {rules}");
    }
    let d = n.d();
    assert_eq!(inspect(d, "keep", "{{.NetworkSettings.IPAddress}}"), ip);
    // A new container does not get the restored address.
    let other = d.docker_ok(&["run", "--rm", "busybox", "sh", "-c", "ip -4 addr show eth0"]);
    assert!(!other.contains(&format!("inet {ip}/")), "{other}");
    assert!(other.contains("inet 10.199.43."), "{other}");
    d.docker_ok(&["rm", "-f", "keep"]);
    n.d_mut().stop();
    // Without containers left, live-restore or not, the daemon cleaned nothing it should
    // have kept; the Drop guard removes the rest.
}

/// A UDP echo on port 5353, run by the host's python3 with the host's /usr mounted
/// read-only (busybox has no UDP server).
const UDP_ECHO: &str = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 5353))\nwhile True:\n    d, a = s.recvfrom(100)\n    s.sendto(b'echo:' + d, a)\n";

/// A helper process of the test's own, ended (by its pid) however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn udp_ask(n: &NetNs, addr: &str, port: u16) -> bool {
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(1)\ns.sendto(b'hi', ('{addr}', {port}))\nprint(s.recv(100).decode())\n"
    );
    let out = n.ns(&["python3", "-c", &script]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "echo:hi"
}

#[test]
fn published_ports_as_dockerd() {
    require_root!();
    let n = NetNs::start("berth0", &["--bip", "10.199.44.1/24"], &[]);
    let d = n.d();
    d.import_busybox();
    let web = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            "127.0.0.1:18081:8080",
            "-p",
            "18082:8080",
            "busybox",
            "sh",
            "-c",
            SERVE,
        ])
        .trim()
        .to_owned();
    let get = |url: &str| n.ns(&["timeout", "3", "busybox", "wget", "-q", "-O", "-", url]);
    wait_until("web to answer at 127.0.0.1:18081", || {
        get("http://127.0.0.1:18081/hostname").status.success()
    });
    // From the host: loopback, and a host address on every-address bindings.
    let body = String::from_utf8_lossy(&get("http://127.0.0.1:18081/hostname").stdout).into_owned();
    assert_eq!(body.trim(), &web[..12]);
    assert!(get("http://10.199.44.1:18082/hostname").status.success());
    assert!(get("http://127.0.0.1:18082/hostname").status.success());
    // 127.0.0.1:18081 only: not on the bridge's address.
    assert!(!get("http://10.199.44.1:18081/hostname").status.success());
    // From another container, through the host's address (hairpin NAT).
    let fetched = d.docker_ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &fetch_cmd("http://10.199.44.1:18082/hostname"),
    ]);
    assert_eq!(fetched.trim(), &web[..12]);

    // What the CLI shows.
    let mut port = d
        .docker_ok(&["port", "web"])
        .lines()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    port.sort();
    assert_eq!(
        port,
        ["8080/tcp -> 0.0.0.0:18082", "8080/tcp -> 127.0.0.1:18081"]
    );
    let ps = d.docker_ok(&["ps", "--filter", "name=web", "--format", "{{.Ports}}"]);
    assert!(
        ps.contains("127.0.0.1:18081->8080/tcp") && ps.contains("0.0.0.0:18082->8080/tcp"),
        "{ps}"
    );
    let ports = inspect(d, "web", "{{json .NetworkSettings.Ports}}");
    let v: serde_json::Value = serde_json::from_str(&ports).unwrap();
    assert_eq!(v["8080/tcp"].as_array().map(Vec::len), Some(2), "{ports}");
    assert_eq!(
        d.docker_ok(&["ps", "-q", "--filter", "publish=18082"])
            .trim(),
        &web[..12]
    );

    // A port berthd holds, and one another process holds, as dockerd words them.
    let out = d.docker(&["run", "-d", "-p", "18082:80", "busybox", "sleep", "100"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("Bind for 0.0.0.0:18082 failed: port is already allocated"),
        "{err}"
    );
    let other = KillOnDrop(
        std::process::Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", n.holder_pid()))
            .args(["busybox", "nc", "-l", "-p", "18090"])
            .spawn()
            .unwrap(),
    );
    // busybox nc listens on [::] where the kernel has IPv6, on 0.0.0.0 otherwise.
    wait_until("nc to listen", || {
        n.ns_ok(&["cat", "/proc/net/tcp", "/proc/net/tcp6"])
            .contains(":46AA ")
    });
    let out = d.docker(&["run", "-d", "-p", "18090:80", "busybox", "sleep", "100"]);
    drop(other);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("bind: address already in use"), "{err}");
    // A refused start leaves no rule behind.
    assert!(!n.rules("nat").contains("--dport 18090"));

    // -P: every exposed port on a port the kernel picks.
    d.docker_ok(&[
        "run", "-d", "--name", "pall", "--expose", "9000", "-P", "busybox", "sleep", "100",
    ]);
    let mapped = d.docker_ok(&["port", "pall", "9000"]);
    let host_port: u16 = mapped.trim().rsplit(':').next().unwrap().parse().unwrap();
    let range = n.ns_ok(&["cat", "/proc/sys/net/ipv4/ip_local_port_range"]);
    let lo: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    assert!(host_port >= lo, "{mapped} {range}");

    // UDP.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        "15353:5353/udp",
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/lib:/lib:ro",
        "-v",
        "/lib64:/lib64:ro",
        "busybox",
        "/usr/bin/python3",
        "-c",
        UDP_ECHO,
    ]);
    wait_until("the UDP echo to answer", || udp_ask(&n, "127.0.0.1", 15353));

    // Stopped: the port and its rules go; started again: published again.
    d.docker_ok(&["stop", "-t", "1", "web"]);
    // The host port is free when stop returns; the rules go right after.
    wait_until("web's rules to go", || {
        !n.rules("nat").contains("--dport 18082")
    });
    assert_eq!(inspect(d, "web", "{{json .NetworkSettings.Ports}}"), "{}");
    d.docker_ok(&["start", "web"]);
    wait_until("web to answer again", || {
        get("http://127.0.0.1:18082/hostname").status.success()
    });

    // Combinations dockerd refuses (and the host network, which berthd refuses).
    let out = d.docker(&["create", "--network", "host", "-p", "18083:80", "busybox"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--network host"),
        "{out:?}"
    );
    let out = d.docker(&[
        "create",
        "--network",
        "container:web",
        "-p",
        "18083:80",
        "busybox",
    ]);
    assert!(!out.status.success(), "{out:?}");

    // --ip: the address of a publish that names none.
    let mut n = n;
    n.restart(&["--bip", "10.199.44.1/24", "--ip", "127.0.0.1"]);
    let d = n.d();
    d.docker_ok(&["rm", "-f", "web", "pall", "udp"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "lo",
        "-p",
        "18084:8080",
        "busybox",
        "sh",
        "-c",
        SERVE,
    ]);
    assert_eq!(
        d.docker_ok(&["port", "lo", "8080"]).trim(),
        "127.0.0.1:18084"
    );
    let get = |url: &str| n.ns(&["timeout", "3", "busybox", "wget", "-q", "-O", "-", url]);
    wait_until("lo to answer at 127.0.0.1:18084", || {
        get("http://127.0.0.1:18084/hostname").status.success()
    });
    assert!(!get("http://10.199.44.1:18084/hostname").status.success());
    d.docker_ok(&["rm", "-f", "lo"]);

    // After the daemon stops: no rule of ours left.
    n.d_mut().stop();
    let nat = n.rules("nat");
    assert!(!nat.contains("BERTH") && !nat.contains("DNAT"), "{nat}");
    assert!(!n.rules("filter").contains("BERTH"));
}

#[test]
fn dns_and_hosts_options_reach_the_container() {
    require_root!();
    let n = NetNs::start("berth0", &["--bip", "10.199.45.1/24"], &[]);
    let d = n.d();
    d.import_busybox();
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "a.test",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "db:10.9.9.9",
        "--add-host",
        "gw:host-gateway",
        "--hostname",
        "hh",
        "--domainname",
        "example.org",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; ip -4 addr show eth0",
    ]);
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(
        parts[0], "nameserver 192.0.2.53\nsearch a.test\noptions ndots:2\n",
        "{out}"
    );
    let ip = parts[2]
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap();
    assert!(
        parts[1].starts_with("127.0.0.1\tlocalhost\n")
            && parts[1].ends_with(&format!(
                "10.9.9.9\tdb\n10.199.45.1\tgw\n{ip}\thh.example.org hh\n"
            )),
        "{out}"
    );

    // Without options: the host's file less its loopback nameservers, and Google's when
    // nothing is left (dockerd's rule).
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let usable = host.lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next() == Some("nameserver")
            && w.next()
                .is_some_and(|a| !a.starts_with("127.") && a != "::1")
    });
    let resolv = d.docker_ok(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(!resolv.contains("nameserver 127."), "{resolv}");
    assert_eq!(resolv.contains("nameserver 8.8.8.8"), !usable, "{resolv}");

    // The host's network: the host's name and files, with --add-host.
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--add-host",
        "db:10.9.9.9",
        "busybox",
        "sh",
        "-c",
        "hostname; echo ---; cat /etc/hosts",
    ]);
    let host_name = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    let (name, hosts) = out.split_once("---\n").unwrap();
    assert_eq!(name.trim(), host_name);
    assert!(
        hosts.starts_with(host_hosts.trim_end()) && hosts.ends_with("10.9.9.9\tdb\n"),
        "{hosts}"
    );

    // Bad entries: dockerd's words, 400, nothing made.
    for (hosts, want) in [
        (
            r#"["db:nope"]"#,
            "invalid IP address in add-host: \\\"nope\\\"",
        ),
        (r#"["db"]"#, "bad format for add-host: \\\"db\\\""),
    ] {
        let body = format!(r#"{{"Image":"busybox","HostConfig":{{"ExtraHosts":{hosts}}}}}"#);
        let reply = d
            .raw(&format!(
                "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ))
            .unwrap();
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
        assert!(reply.contains(want), "{reply}");
    }
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
    // The SDK sends them as the CLI does.
    let got = d.python_sdk_ok(
        "print(c.containers.run('busybox', 'cat /etc/hosts /etc/resolv.conf', remove=True, \
         extra_hosts={'sdk': '10.8.8.8'}, dns=['192.0.2.54']).decode())",
    );
    assert!(
        got.contains("10.8.8.8\tsdk") && got.contains("nameserver 192.0.2.54"),
        "{got}"
    );
}

#[test]
fn container_network_mode_shares_the_namespace_name_and_files() {
    require_root!();
    let n = NetNs::start("berth0", &["--bip", "10.199.46.1/24"], &[]);
    let d = n.d();
    d.import_busybox();
    let web = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--dns",
            "192.0.2.55",
            "busybox",
            "sh",
            "-c",
            SERVE,
        ])
        .trim()
        .to_owned();
    let ip = inspect(d, "web", "{{.NetworkSettings.IPAddress}}");
    wait_for_http(d, &ip);
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        "busybox",
        "sh",
        "-c",
        "hostname; ip -4 addr show eth0; cat /etc/resolv.conf; wget -q -O - http://127.0.0.1:8080/hostname",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(&web[..12]), "{out}");
    assert!(out.contains(&format!("inet {ip}/24")), "{out}");
    assert!(out.contains("nameserver 192.0.2.55"), "{out}");
    assert_eq!(out.lines().last(), Some(&web[..12]), "{out}");

    // Inspect as dockerd: the mode names the other by id, no network of its own.
    let joined = d.docker_ok(&[
        "create",
        "--name",
        "joined",
        "--network",
        "container:web",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(
            d,
            joined.trim(),
            "{{.HostConfig.NetworkMode}} {{json .NetworkSettings.Networks}}"
        ),
        format!("container:{web} {{}}")
    );

    // What dockerd refuses, in its words.
    for (args, want) in [
        (
            &["--hostname", "x"][..],
            "conflicting options: hostname and the network mode",
        ),
        (
            &["--dns", "192.0.2.1"][..],
            "conflicting options: dns and the network mode",
        ),
        (
            &["--add-host", "a:192.0.2.1"][..],
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
    ] {
        let mut all = vec!["create", "--network", "container:web"];
        all.extend_from_slice(args);
        all.push("busybox");
        let out = d.docker(&all);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(want),
            "{args:?}: {out:?}"
        );
    }
    // The name is kept as the id from the create on (as for --pid and --ipc).
    let idle = d.docker_ok(&["create", "--name", "idle", "busybox", "true"]);
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:idle",
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "cannot join network of a non running container: {}",
            idle.trim()
        )),
        "{out:?}"
    );
    // The SDK's network_mode.
    let got = d.python_sdk_ok(
        "print(c.containers.run('busybox', 'hostname', remove=True, network_mode='container:web').decode())",
    );
    assert_eq!(got.trim(), &web[..12]);
    d.docker_ok(&["rm", "-f", "web", "joined", "idle"]);
}

#[test]
fn predefined_networks_as_dockerd_lists_them() {
    require_root!();
    let n = NetNs::start("berth0", &["--bip", "10.199.47.1/24", "--mtu", "1400"], &[]);
    let d = n.d();
    d.import_busybox();
    let ls = d.docker_ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    assert_eq!(
        ls,
        "bridge bridge local\nhost host local\nnone null local\n"
    );
    let q = d.docker_ok(&["network", "ls", "-q", "--filter", "driver=null"]);
    assert_eq!(q.lines().count(), 1, "{q}");
    let web = d
        .docker_ok(&["run", "-d", "--name", "web", "busybox", "sleep", "100"])
        .trim()
        .to_owned();
    let ip = inspect(d, "web", "{{.NetworkSettings.IPAddress}}");
    let got = d.docker_ok(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{index .Options \"com.docker.network.driver.mtu\"}} {{range $id, $c := .Containers}}{{$id}} {{$c.Name}} {{$c.IPv4Address}}{{end}}",
    ]);
    assert_eq!(
        got.trim(),
        format!("10.199.47.0/24 10.199.47.1 1400 {web} web {ip}/24")
    );
    // The id the container's endpoint names is the bridge network's.
    assert_eq!(
        inspect(d, "web", "{{.NetworkSettings.Networks.bridge.NetworkID}}"),
        d.docker_ok(&["network", "inspect", "-f", "{{.Id}}", "bridge"])
            .trim()
    );
    let out = d.docker(&["network", "rm", "bridge"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("bridge is a pre-defined network and cannot be removed"),
        "{out:?}"
    );
    // Only bridge networks can be made (root_networks has the rest).
    let out = d.docker(&["network", "create", "-d", "overlay", "mynet"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("network driver \"overlay\""),
        "{out:?}"
    );
    let out = d.docker(&["network", "inspect", "nosuch"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("network nosuch not found"),
        "{out:?}"
    );
    let names = d.python_sdk_ok("print(sorted(n.name for n in c.networks.list()))");
    assert_eq!(names.trim(), "['bridge', 'host', 'none']");
    d.docker_ok(&["rm", "-f", "web"]);
    d.docker_ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    // dockerd's network events: connect at each start, disconnect at each exit.
    let evs = d.events_so_far(&["type=network"], "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}} {{.Actor.Attributes.container}}");
    let lines: Vec<&str> = evs.lines().collect();
    assert_eq!(lines.len(), 4, "{evs}");
    assert_eq!(lines[0], format!("connect bridge bridge {web}"));
    assert_eq!(lines[1], format!("disconnect bridge bridge {web}"));
    assert!(lines[2].starts_with("connect none null "), "{evs}");
    assert!(lines[3].starts_with("disconnect none null "), "{evs}");
    let bridge_id = d.docker_ok(&["network", "inspect", "-f", "{{.Id}}", "bridge"]);
    let ids = d.events_so_far(&["network=bridge"], "{{.Actor.ID}}");
    assert!(
        ids.lines().count() == 2 && ids.lines().all(|l| l == bridge_id.trim()),
        "{ids}"
    );
}

#[test]
fn links_give_hosts_env_and_icc_ports() {
    require_root!();
    let n = NetNs::start("berth0", &["--bip", "10.199.48.1/24", "--icc=false"], &[]);
    let d = n.d();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--expose",
        "8080",
        "--expose",
        "9090",
        "-e",
        "PASSWORD=x",
        "busybox",
        "sh",
        "-c",
        SERVE,
    ]);
    d.docker_ok(&["run", "-d", "--name", "other", "busybox", "sh", "-c", SERVE]);
    let db_ip = inspect(d, "db", "{{.NetworkSettings.IPAddress}}");
    let other_ip = inspect(d, "other", "{{.NetworkSettings.IPAddress}}");
    let db_host = inspect(d, "db", "{{.Config.Hostname}}");
    let script = format!(
        "cat /etc/hosts; env | sort; echo ---; ({}); echo; echo ---; ({})",
        fetch_cmd("http://dbalias:8080/hostname"),
        fetch_cmd(&format!("http://{other_ip}:8080/hostname"))
    );
    // The link opens db's port under --icc=false (the server may still be starting).
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let out = d.docker(&[
            "run",
            "--rm",
            "--name",
            "web",
            "--link",
            "db:dbalias",
            "busybox",
            "sh",
            "-c",
            &script,
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains(&format!("---\n{}\n", &db_host)) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        out.contains(&format!("{db_ip}\tdbalias {db_host} db\n")),
        "{out}"
    );
    for want in [
        format!("DBALIAS_PORT=tcp://{db_ip}:8080"),
        format!("DBALIAS_PORT_8080_TCP=tcp://{db_ip}:8080"),
        format!("DBALIAS_PORT_9090_TCP_ADDR={db_ip}"),
        "DBALIAS_PORT_8080_TCP_PORT=8080".to_owned(),
        "DBALIAS_NAME=/web/dbalias".to_owned(),
        "DBALIAS_ENV_PASSWORD=x".to_owned(),
    ] {
        assert!(out.lines().any(|l| l == want), "{want} in {out}");
    }
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts[1].trim(), db_host, "{out}");
    // --icc=false: a container it is not linked to stays out of reach.
    assert!(
        !parts[2].contains(&other_ip) && parts[2].trim().is_empty(),
        "{out}"
    );

    // Inspect and `docker rm --link`.
    d.docker_ok(&[
        "create", "--name", "web2", "--link", "db", "busybox", "true",
    ]);
    assert_eq!(
        inspect(d, "web2", "{{json .HostConfig.Links}}"),
        r#"["/db:/web2/db"]"#
    );
    d.docker_ok(&["rm", "--link", "/web2/db"]);
    assert_eq!(inspect(d, "web2", "{{json .HostConfig.Links}}"), "null");
    let out = d.docker(&["rm", "--link", "/web2/db"]);
    assert!(!out.status.success());

    // dockerd's refusals.
    let out = d.docker(&["create", "--link", "nosuch:x", "busybox"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not get container for nosuch"),
        "{out:?}"
    );
    d.docker_ok(&["create", "--name", "idle", "busybox", "true"]);
    d.docker_ok(&[
        "create", "--name", "lnk", "--link", "idle:i", "busybox", "true",
    ]);
    let out = d.docker(&["start", "lnk"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Cannot link to a non running container: /idle AS /lnk/i"),
        "{out:?}"
    );
    let out = d.docker(&["create", "--network", "host", "--link", "db", "busybox"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("host type networking can't be used with links"),
        "{out:?}"
    );
    // The links go with the child; the parent starts without them.
    d.docker_ok(&["rm", "-f", "idle"]);
    d.docker_ok(&["start", "lnk"]);
    assert_eq!(inspect(d, "lnk", "{{json .HostConfig.Links}}"), "null");
    // The graph db keeps links across a restart of berthd.
    d.docker_ok(&[
        "create", "--name", "keep", "--link", "db", "busybox", "true",
    ]);
    let mut n = n;
    n.restart(&["--bip", "10.199.48.1/24", "--icc=false"]);
    let d = n.d();
    assert_eq!(
        inspect(d, "keep", "{{json .HostConfig.Links}}"),
        r#"["/db:/keep/db"]"#
    );
    d.docker_ok(&["rm", "-f", "db", "other", "web2", "lnk", "keep"]);
}

#[test]
fn mac_address_reaches_eth0() {
    require_root!();
    let n = NetNs::start("berth0", &["--bip", "10.199.49.1/24"], &[]);
    let d = n.d();
    d.import_busybox();
    // The CLI sends --mac-address only to API 1.44 daemons (it says so itself against
    // 1.41, as against dockerd 20.10); the SDK sends Config.MacAddress.
    let out = d.python_sdk_ok(
        "print(c.containers.run('busybox', 'cat /sys/class/net/eth0/address', name='mac', \
         mac_address='02:42:ac:11:00:99').decode())",
    );
    assert_eq!(out.trim(), "02:42:ac:11:00:99");
    // A start again gets it again.
    d.docker_ok(&["start", "mac"]);
    assert_eq!(d.docker_ok(&["wait", "mac"]).trim(), "0");
    assert!(
        d.docker_ok(&["logs", "mac"])
            .lines()
            .all(|l| l == "02:42:ac:11:00:99")
    );
    let running = d.python_sdk_ok(
        "print(c.containers.run('busybox', 'sleep 100', detach=True, \
         mac_address='02:42:ac:11:00:98').id)",
    );
    assert_eq!(
        inspect(d, running.trim(), "{{.NetworkSettings.MacAddress}}"),
        "02:42:ac:11:00:98"
    );
    for (extra, want) in [
        ("mac_address='nope'", "nope is not a valid mac address"),
        ("mac_address='01:00:5e:00:00:01'", "multicast"),
        (
            "mac_address='02:42:ac:11:00:97', network_mode='host'",
            "conflicting options: mac-address and the network mode",
        ),
        (
            "mac_address='02:42:ac:11:00:97', network_mode='none'",
            "Config.MacAddress (--mac-address)",
        ),
    ] {
        let got = d.python_sdk_ok(&format!(
            "import docker.errors\ntry:\n    c.containers.create('busybox', {extra})\n    print('created')\nexcept docker.errors.APIError as e:\n    print(e.response.status_code, e.explanation)"
        ));
        assert!(
            got.starts_with("400 ") && got.contains(want),
            "{extra}: {got}"
        );
    }
    d.docker_ok(&["rm", "-f", "mac", running.trim()]);
}

#[test]
fn published_ports_outlive_a_crash_of_berthd() {
    require_root!();
    let args = ["--bip", "10.199.50.1/24"];
    let mut n = NetNs::start("berth0", &args, &[]);
    n.d().import_busybox();
    n.d().docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "18086:8080",
        "busybox",
        "sh",
        "-c",
        SERVE,
    ]);
    let ip = inspect(n.d(), "web", "{{.NetworkSettings.IPAddress}}");
    let get = |n: &NetNs| {
        n.ns(&[
            "timeout",
            "3",
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            "http://127.0.0.1:18086/hostname",
        ])
        .status
        .success()
    };
    wait_until("web to answer", || get(&n));
    n.crash_and_restart(&args);
    // Still running, with its address, its port held and routed, each rule once.
    assert_eq!(inspect(n.d(), "web", "{{.State.Running}}"), "true");
    assert_eq!(inspect(n.d(), "web", "{{.NetworkSettings.IPAddress}}"), ip);
    assert_eq!(
        n.d().docker_ok(&["port", "web"]).trim(),
        "8080/tcp -> 0.0.0.0:18086"
    );
    assert!(get(&n));
    let nat = n.rules("nat");
    assert_eq!(nat.matches("--dport 18086").count(), 1, "{nat}");
    let out = n
        .d()
        .docker(&["run", "-d", "-p", "18086:80", "busybox", "sleep", "9"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("port is already allocated"),
        "{out:?}"
    );
    // Stopped: the rule goes; a stop of berthd leaves none of ours.
    n.d().docker_ok(&["rm", "-f", "web"]);
    wait_until("web's rules to go", || {
        !n.rules("nat").contains("--dport 18086")
    });
    n.d_mut().stop();
    let nat = n.rules("nat");
    assert!(!nat.contains("BERTH") && !nat.contains("DNAT"), "{nat}");
}
