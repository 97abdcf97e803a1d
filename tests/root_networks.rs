//! User-defined bridge networks, driven by the real docker CLI (and the Python SDK)
//! against a real berthd: create, ls, inspect, rm, prune; containers on them with their
//! addresses, `--ip` and `--network-alias`; isolation between networks; connect and
//! disconnect; the embedded DNS. Root only.
//!
//! Isolation: each test's berthd runs in a network namespace of its own
//! (`tests/common/netns.rs`), so its bridges and rules vanish with it; each test also has
//! its own bridge names and subnets, in 10.199.60.0-10.199.79.255 only.
#![allow(clippy::tests_outside_test_module, clippy::unwrap_used)]

mod common;
#[path = "common/netns.rs"]
mod netns;

use common::TestDaemon;
use netns::NetNs;

fn inspect(d: &TestDaemon, id: &str, format: &str) -> String {
    d.docker_ok(&["inspect", "-f", format, id])
        .trim()
        .to_owned()
}

fn net_inspect(d: &TestDaemon, net: &str, format: &str) -> String {
    d.docker_ok(&["network", "inspect", "-f", format, net])
        .trim()
        .to_owned()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `docker args`, expects it to fail with `text` in its stderr.
fn refused(d: &TestDaemon, args: &[&str], text: &str) {
    let out = d.docker(args);
    assert!(!out.status.success(), "{args:?} succeeded: {out:?}");
    assert!(stderr_of(&out).contains(text), "{args:?}: {out:?}");
}

#[test]
fn network_create_ls_inspect_rm_as_dockerd() {
    require_root!();
    let mut n = NetNs::start(
        "berth0",
        &[
            "--bip",
            "10.199.60.1/24",
            "--default-address-pool",
            "base=10.199.64.0/23,size=24",
        ],
        &[],
    );
    let d = n.d();
    let id = d
        .docker_ok(&[
            "network",
            "create",
            "--subnet",
            "10.199.61.0/24",
            "--gateway",
            "10.199.61.254",
            "--ip-range",
            "10.199.61.128/25",
            "--label",
            "team=blue",
            "--attachable",
            "--opt",
            "com.docker.network.bridge.name=btn61",
            "n1",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    // No subnet given: the first of the daemon's pool that nothing else uses.
    let id2 = d.docker_ok(&["network", "create", "n2"]).trim().to_owned();
    assert_eq!(
        net_inspect(
            d,
            "n2",
            "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}"
        ),
        "10.199.64.0/24 10.199.64.1"
    );
    let br2 = format!("br-{}", &id2[..12]);
    assert!(n.link_exists(&br2), "{br2}");
    // dockerd's refusals.
    refused(
        d,
        &["network", "create", "n1"],
        "network with name n1 already exists",
    );
    refused(
        d,
        &["network", "create", "--subnet", "10.199.61.128/25", "n3"],
        "Pool overlaps with other one on this address space",
    );
    refused(
        d,
        &[
            "network",
            "create",
            "--opt",
            "com.docker.network.foo=1",
            "n3",
        ],
        "com.docker.network.foo",
    );
    refused(d, &["network", "create", "-d", "macvlan", "n3"], "macvlan");
    // A link of that name that is not a bridge: refused, and left alone.
    refused(
        d,
        &[
            "network",
            "create",
            "--opt",
            "com.docker.network.bridge.name=lo",
            "n3",
        ],
        "lo is not a bridge",
    );
    assert!(n.link_exists("lo"));
    refused(d, &["network", "create", "--ipv6", "n3"], "EnableIPv6");
    refused(
        d,
        &[
            "network",
            "create",
            "--aux-address",
            "x=10.199.62.9",
            "--subnet",
            "10.199.62.0/24",
            "n3",
        ],
        "AuxiliaryAddresses",
    );

    // ls and its filters.
    let ls = d.docker_ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    for want in [
        "bridge bridge local",
        "n1 bridge local",
        "n2 bridge local",
        "none null local",
    ] {
        assert!(ls.lines().any(|l| l == want), "{want}: {ls}");
    }
    let custom = d.docker_ok(&[
        "network",
        "ls",
        "--filter",
        "type=custom",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(custom, "n1\nn2\n");
    let labelled = d.docker_ok(&[
        "network",
        "ls",
        "-f",
        "label=team=blue",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(labelled, "n1\n");
    let dangling = d.docker_ok(&[
        "network",
        "ls",
        "-f",
        "dangling=true",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(dangling, "n1\nn2\n");

    // inspect as dockerd renders it.
    assert_eq!(
        net_inspect(
            d,
            "n1",
            "{{.Id}} {{.Scope}} {{.Driver}} {{.Internal}} {{.Attachable}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}} {{.IPRange}}{{end}} {{.Labels.team}} {{index .Options \"com.docker.network.bridge.name\"}}"
        ),
        format!(
            "{id} local bridge false true 10.199.61.0/24 10.199.61.254 10.199.61.128/25 blue btn61"
        )
    );
    assert_eq!(net_inspect(d, &id[..10], "{{.Name}}"), "n1");
    let br = n.ns_ok(&["ip", "-4", "addr", "show", "dev", "btn61"]);
    assert!(br.contains("inet 10.199.61.254/24"), "{br}");
    let filter = n.rules("filter");
    assert!(
        filter.contains("-A BERTH-F-btn61 -i btn61 -o btn61 -j ACCEPT"),
        "{filter}"
    );
    // Isolation both ways between every pair of bridges.
    for (a, b) in [
        ("btn61", "berth0"),
        ("berth0", "btn61"),
        ("btn61", br2.as_str()),
        (br2.as_str(), "btn61"),
    ] {
        let chain = if a == "berth0" {
            "BERTH-FORWARD".to_owned()
        } else {
            format!("BERTH-F-{a}")
        };
        let rule = format!("-A {chain} -i {a} -o {b} -j DROP");
        assert!(filter.contains(&rule), "{rule}: {filter}");
    }
    let nat = n.rules("nat");
    assert!(
        nat.contains("-A POSTROUTING -s 10.199.61.0/24 ! -o btn61 -j MASQUERADE"),
        "{nat}"
    );

    // Kept across a restart of berthd: the same network, its bridge and rules again.
    n.restart(&["--bip", "10.199.60.1/24"]);
    let d = n.d();
    assert_eq!(net_inspect(d, "n1", "{{.Id}}"), id);
    assert!(
        n.rules("filter")
            .contains("-A BERTH-F-btn61 -i btn61 -o btn61 -j ACCEPT")
    );

    // rm: the bridge and the rules go.
    assert_eq!(d.docker_ok(&["network", "rm", "n2"]).trim(), "n2");
    assert!(!n.link_exists(&br2));
    assert!(!n.rules("filter").contains(&br2));
    refused(d, &["network", "inspect", "n2"], "network n2 not found");
    // prune: the unused user-defined networks (all here).
    let pruned = d.docker_ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("n1"), "{pruned}");
    assert!(!n.link_exists("btn61"));
    let filter = n.rules("filter");
    assert!(!filter.contains("btn61"), "{filter}");
    let ls = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls, "bridge\nhost\nnone\n");
    // The events of create and destroy.
    let evs = d.events_so_far(
        &["type=network", "event=destroy"],
        "{{.Action}} {{.Actor.Attributes.name}}",
    );
    assert!(evs.contains("destroy n1"), "{evs}");
}

#[test]
fn containers_on_a_user_network_get_its_addresses() {
    require_root!();
    let n = NetNs::start(
        "berth0",
        &[
            "--bip",
            "10.199.66.1/24",
            "--default-address-pool",
            "base=10.199.69.0/24,size=24",
        ],
        &[],
    );
    let d = n.d();
    d.import_busybox();
    d.docker_ok(&["network", "create", "--subnet", "10.199.67.0/24", "na"]);
    d.docker_ok(&["network", "create", "--subnet", "10.199.68.0/24", "nb"]);
    let s1 = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "s1",
            "--network",
            "na",
            "--ip",
            "10.199.67.50",
            "--network-alias",
            "web",
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_owned();
    assert_eq!(
        inspect(
            d,
            "s1",
            "{{with index .NetworkSettings.Networks \"na\"}}{{.IPAddress}} {{.IPPrefixLen}} {{.Gateway}} {{.IPAMConfig.IPv4Address}} {{.Aliases}}{{end}}"
        ),
        format!(
            "10.199.67.50 24 10.199.67.1 10.199.67.50 [web {}]",
            &s1[..12]
        )
    );
    let netid = net_inspect(d, "na", "{{.Id}}");
    assert_eq!(
        inspect(d, "s1", "{{.NetworkSettings.Networks.na.NetworkID}}"),
        netid
    );
    assert_eq!(inspect(d, "s1", "{{.HostConfig.NetworkMode}}"), "na");
    // The network lists it.
    assert_eq!(
        net_inspect(
            d,
            "na",
            "{{range $id, $c := .Containers}}{{$id}} {{$c.Name}} {{$c.IPv4Address}}{{end}}"
        ),
        format!("{s1} s1 10.199.67.50/24")
    );
    // Inside: eth0 on the network, the gateway, and the embedded DNS in resolv.conf.
    let inside = d.docker_ok(&[
        "exec",
        "s1",
        "sh",
        "-c",
        "ip -4 addr show eth0; ip route; cat /etc/resolv.conf",
    ]);
    assert!(inside.contains("inet 10.199.67.50/24"), "{inside}");
    assert!(
        inside.contains("default via 10.199.67.1 dev eth0"),
        "{inside}"
    );
    assert!(inside.contains("nameserver 127.0.0.11"), "{inside}");
    assert!(inside.contains("options ndots:0"), "{inside}");
    // Same network: reachable; another network or the default bridge: not.
    d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "na",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "10.199.67.50",
    ]);
    for net in ["nb", "bridge"] {
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "ping",
            "-c1",
            "-W1",
            "10.199.67.50",
        ]);
        assert!(!out.status.success(), "{net} reached na: {out:?}");
    }
    // From a pool address on the other network, the subnet's.
    let ip = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "nb",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0",
    ]);
    assert!(ip.contains("inet 10.199.68."), "{ip}");
    // dockerd's refusals.
    refused(
        d,
        &["run", "--rm", "--ip", "10.199.66.9", "busybox", "true"],
        "user specified IP address is supported on user defined networks only",
    );
    refused(
        d,
        &[
            "run",
            "--rm",
            "--network",
            "na",
            "--ip",
            "10.199.67.50",
            "busybox",
            "true",
        ],
        "Address already in use",
    );
    d.docker_ok(&[
        "network",
        "create",
        "--opt",
        "com.docker.network.bridge.name=btn69",
        "nc",
    ]);
    refused(
        d,
        &[
            "run",
            "--rm",
            "--network",
            "nc",
            "--ip",
            "10.199.69.9",
            "busybox",
            "true",
        ],
        "user specified IP address is supported only when connecting to networks with user configured subnets",
    );
    // A published port of a container on a user-defined network, from the host.
    let web = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "na",
            "-p",
            "127.0.0.1:18090:8080",
            "busybox",
            "sh",
            "-c",
            "mkdir -p /www && hostname > /www/hostname && exec httpd -f -p 8080 -h /www",
        ])
        .trim()
        .to_owned();
    let get = || {
        n.ns(&[
            "timeout",
            "3",
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            "http://127.0.0.1:18090/hostname",
        ])
    };
    assert!(
        common::wait_for(10, || get().status.success()),
        "{:?}",
        get()
    );
    assert_eq!(String::from_utf8_lossy(&get().stdout).trim(), &web[..12]);
    assert_eq!(
        d.docker_ok(&["port", "web"]).trim(),
        "8080/tcp -> 127.0.0.1:18090"
    );
    d.docker_ok(&["rm", "-f", "web"]);
    // A network with a running container stays.
    refused(
        d,
        &["network", "rm", "na"],
        &format!("error while removing network: network na id {netid} has active endpoints"),
    );
    // Config.MacAddress on a user network (the CLI sends --mac-address with --network
    // NAME per endpoint, which needs API 1.44; the SDK sends it as API 1.41 has it).
    let mac = d.python_sdk_ok(
        "print(c.containers.run('busybox', 'cat /sys/class/net/eth0/address', network='na', \
         mac_address='02:42:0a:c7:43:99', remove=True).decode())",
    );
    assert_eq!(mac.trim(), "02:42:0a:c7:43:99");
    // The Python SDK: a network and a container on it.
    let out = d.python_sdk_ok(
        "net = c.networks.create('nsdk', driver='bridge', ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet='10.199.70.0/24')]))\n\
         print(c.containers.run('busybox', 'ip -4 -o addr show eth0', network='nsdk', remove=True).decode())\n\
         net.remove()",
    );
    assert!(out.contains("inet 10.199.70."), "{out}");
    // Stopped: its address goes back, and the network can go.
    d.docker_ok(&["rm", "-f", "s1"]);
    d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "na",
        "--ip",
        "10.199.67.50",
        "busybox",
        "true",
    ]);
    d.docker_ok(&["network", "rm", "na", "nb", "nc"]);
}

#[test]
fn connect_and_disconnect_running_and_stopped_containers() {
    require_root!();
    let n = NetNs::start("berth0", &["--bip", "10.199.71.1/24"], &[]);
    let d = n.d();
    d.import_busybox();
    d.docker_ok(&["network", "create", "--subnet", "10.199.72.0/24", "nx"]);
    d.docker_ok(&["run", "-d", "--name", "c1", "busybox", "sleep", "300"]);
    // Live: eth1 appears with the address asked for.
    d.docker_ok(&[
        "network",
        "connect",
        "--ip",
        "10.199.72.40",
        "--alias",
        "peer",
        "nx",
        "c1",
    ]);
    let addr = d.docker_ok(&["exec", "c1", "ip", "-4", "-o", "addr"]);
    assert!(
        addr.contains("eth1") && addr.contains("10.199.72.40/24"),
        "{addr}"
    );
    assert!(
        addr.contains("eth0") && addr.contains("10.199.71."),
        "{addr}"
    );
    assert_eq!(
        inspect(
            d,
            "c1",
            "{{.NetworkSettings.Networks.nx.IPAddress}} {{.NetworkSettings.Networks.nx.Aliases}}"
        ),
        format!("10.199.72.40 [peer {}]", &inspect(d, "c1", "{{.Id}}")[..12])
    );
    d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "nx",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "10.199.72.40",
    ]);
    refused(
        d,
        &["network", "connect", "nx", "c1"],
        "already exists in network nx",
    );
    refused(
        d,
        &["network", "connect", "bridge", "c1"],
        "user-defined networks only",
    );
    // Disconnect: eth1 goes, the address is free again.
    d.docker_ok(&["network", "disconnect", "nx", "c1"]);
    let addr = d.docker_ok(&["exec", "c1", "ip", "-o", "link"]);
    assert!(!addr.contains("eth1"), "{addr}");
    assert_eq!(
        inspect(d, "c1", "{{index .NetworkSettings.Networks \"nx\"}}"),
        "<nil>"
    );
    refused(
        d,
        &["network", "disconnect", "nx", "c1"],
        "is not connected to network nx",
    );
    d.docker_ok(&["network", "disconnect", "-f", "nx", "c1"]);
    // Stopped: connected at its next start.
    d.docker_ok(&["create", "--name", "c2", "busybox", "sleep", "300"]);
    d.docker_ok(&["network", "connect", "nx", "c2"]);
    d.docker_ok(&["start", "c2"]);
    let addr = d.docker_ok(&["exec", "c2", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(addr.contains("10.199.72."), "{addr}");
    let on_nx = d.docker_ok(&["ps", "--filter", "network=nx", "--format", "{{.Names}}"]);
    assert_eq!(on_nx.trim(), "c2");
    // rm -f takes it off every network: the network can go then.
    refused(d, &["network", "rm", "nx"], "has active endpoints");
    d.docker_ok(&["rm", "-f", "c1", "c2"]);
    d.docker_ok(&["network", "rm", "nx"]);
    // The connect and disconnect events.
    let evs = d.events_so_far(&["type=network", "network=nx"], "{{.Action}}");
    assert!(
        evs.contains("connect") && evs.contains("disconnect"),
        "{evs}"
    );
}

/// The embedded DNS: names, short ids and aliases answer on the same network only; a
/// container connected to a second network resolves its names too; after a
/// `--live-restore` restart of berthd a running container keeps its address, and its
/// names still answer.
#[test]
fn names_resolve_on_the_same_network_only() {
    require_root!();
    let args = ["--bip", "10.199.73.1/24", "--live-restore"];
    let mut n = NetNs::start("berth0", &args, &[]);
    let d = n.d();
    d.import_busybox();
    d.docker_ok(&["network", "create", "--subnet", "10.199.74.0/24", "da"]);
    d.docker_ok(&["network", "create", "--subnet", "10.199.75.0/24", "db"]);
    let srv = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            "da",
            "--network-alias",
            "alias1",
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_owned();
    let ip = inspect(d, "srv", "{{.NetworkSettings.Networks.da.IPAddress}}");
    assert!(ip.starts_with("10.199.74."), "{ip}");
    // Upstream at 127.0.0.1 (nothing listens in the test's namespace): other names fail
    // at once instead of waiting for a resolver that is not there.
    let lookup = |net: &str, name: &str| {
        d.docker(&[
            "run",
            "--rm",
            "--network",
            net,
            "--dns",
            "127.0.0.1",
            "busybox",
            "nslookup",
            name,
        ])
    };
    for name in ["srv", "alias1", &srv[..12], "SRV", "srv.da"] {
        let out = lookup("da", name);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(&ip),
            "{name}: {out:?}"
        );
    }
    d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "da",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "alias1",
    ]);
    for name in ["srv", "alias1"] {
        let out = lookup("db", name);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(&ip),
            "{name} answered on db: {out:?}"
        );
    }
    // A container on db connected to da: da's names answer there too.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "db",
        "--dns",
        "127.0.0.1",
        "busybox",
        "sleep",
        "300",
    ]);
    d.docker_ok(&["network", "connect", "da", "cli"]);
    let got = d.docker_ok(&["exec", "cli", "nslookup", "srv"]);
    assert!(got.contains(&ip), "{got}");
    // A live-restore restart: the containers keep running, on their addresses, and the
    // names answer from a new server.
    n.restart(&args);
    let d = n.d();
    assert_eq!(
        inspect(d, "srv", "{{.NetworkSettings.Networks.da.IPAddress}}"),
        ip
    );
    let got = d.docker_ok(&["exec", "cli", "nslookup", "alias1"]);
    assert!(got.contains(&ip), "{got}");
    let out = d.docker(&["network", "rm", "da"]);
    assert!(stderr_of(&out).contains("has active endpoints"), "{out:?}");
    d.docker_ok(&["rm", "-f", "srv", "cli"]);
    d.docker_ok(&["network", "rm", "da", "db"]);
}

/// The bridge driver's options: `--internal` (no way out, no default route),
/// `enable_icc=false` (containers on it cannot reach each other), the MTU.
#[test]
fn internal_icc_and_mtu_options_reach_the_containers() {
    require_root!();
    let n = NetNs::start("berth0", &["--bip", "10.199.76.1/24"], &[]);
    let d = n.d();
    d.import_busybox();
    d.docker_ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.199.77.0/24",
        "--opt",
        "com.docker.network.bridge.name=btn77",
        "ni",
    ]);
    assert_eq!(net_inspect(d, "ni", "{{.Internal}}"), "true");
    let route = d.docker_ok(&["run", "--rm", "--network", "ni", "busybox", "ip", "route"]);
    assert!(!route.contains("default"), "{route}");
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "ni",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "10.199.76.1",
    ]);
    assert!(!out.status.success(), "{out:?}");
    let filter = n.rules("filter");
    assert!(
        filter.contains("-A BERTH-F-btn77 -i btn77 ! -o btn77 -j DROP"),
        "{filter}"
    );
    assert!(
        !n.rules("nat")
            .contains("-s 10.199.77.0/24 ! -o btn77 -j MASQUERADE")
    );
    d.docker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.199.78.0/24",
        "--opt",
        "com.docker.network.bridge.enable_icc=false",
        "--opt",
        "com.docker.network.driver.mtu=1400",
        "nq",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "q1",
        "--network",
        "nq",
        "--ip",
        "10.199.78.10",
        "busybox",
        "sleep",
        "300",
    ]);
    let mtu = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "nq",
        "busybox",
        "cat",
        "/sys/class/net/eth0/mtu",
    ]);
    assert_eq!(mtu.trim(), "1400");
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "nq",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "10.199.78.10",
    ]);
    assert!(
        !out.status.success(),
        "icc=false let a ping through: {out:?}"
    );
    // The gateway (the host) is still reachable.
    d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "nq",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "10.199.78.1",
    ]);
    d.docker_ok(&["rm", "-f", "q1"]);
    d.docker_ok(&["network", "rm", "ni", "nq"]);
}

/// After berthd is killed (-9) and started again, a running container on a user-defined
/// network keeps its address and the network its rules; after a plain stop and start, a
/// `--restart always` container comes back on its network with an address from it.
#[test]
fn containers_get_their_network_back_after_a_daemon_restart() {
    require_root!();
    let args = ["--bip", "10.199.79.1/26"];
    let mut n = NetNs::start("berth0", &args, &[]);
    let d = n.d();
    d.import_busybox();
    d.docker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.199.79.64/26",
        "--opt",
        "com.docker.network.bridge.name=btn79",
        "nr",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "r1",
        "--restart",
        "always",
        "--network",
        "nr",
        "--ip",
        "10.199.79.70",
        "busybox",
        "sleep",
        "300",
    ]);
    n.crash_and_restart(&args);
    let d = n.d();
    assert_eq!(
        inspect(
            d,
            "r1",
            "{{.State.Running}} {{.NetworkSettings.Networks.nr.IPAddress}}"
        ),
        "true 10.199.79.70"
    );
    let filter = n.rules("filter");
    assert!(
        filter.contains("-A BERTH-F-btn79 -i btn79 -o btn79 -j ACCEPT"),
        "{filter}"
    );
    // Its address is still its own: another container cannot take it.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "nr",
        "--ip",
        "10.199.79.70",
        "busybox",
        "true",
    ]);
    assert!(
        stderr_of(&out).contains("Address already in use"),
        "{out:?}"
    );
    // A stop of berthd stops it; its restart policy starts it again on its network.
    n.restart(&args);
    let d = n.d();
    assert!(
        common::wait_for(10, || inspect(d, "r1", "{{.State.Running}}") == "true"),
        "r1 not restarted"
    );
    let addr = d.docker_ok(&["exec", "r1", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(addr.contains("10.199.79.70/26"), "{addr}");
    d.docker_ok(&["rm", "-f", "r1"]);
    // A stop of berthd removes every rule of ours, the user network's too; its bridge
    // stays, as dockerd's.
    n.d_mut().stop();
    for table in ["filter", "nat"] {
        let rules = n.rules(table);
        assert!(
            !rules.contains("BERTH") && !rules.contains("btn79"),
            "{rules}"
        );
    }
    // (The bridge goes with the test's namespace.)
    assert!(n.link_exists("btn79"));
}
