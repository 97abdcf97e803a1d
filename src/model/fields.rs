//! The field table: what berthd does with every field of a container create request
//! (Config, HostConfig, NetworkingConfig), as users read it in docs/api-fields.md.
//!
//! Each field is exactly one of: honoured (the daemon does it, and the test named proves
//! the effect in a real container), stored (kept and shown, with nothing for a daemon to
//! do, as in dockerd), partial (some values honoured, the others refused as not supported
//! yet), not yet (any value but the default is refused with 400 "berthd does not support
//! X yet") or refused (any value but the default is refused for good). A field at its zero
//! or default value is never a request. `actors::store::validate` enforces the table; a
//! unit test checks that every field of the bollard-stubs types is in it and that the
//! docs say the same.

/// What berthd does with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// berthd does it.
    Honoured,
    /// Kept in the record and shown by inspect; nothing for the daemon to do.
    Stored,
    /// Some values honoured (see the note), the others refused as not supported yet.
    Partial,
    /// Any value but the default is refused (400) until the issue in the note builds it.
    NotYet,
    /// Any value but the default is refused (400), for good (the note says why).
    Refused,
}

impl Status {
    /// The word docs/api-fields.md uses.
    pub fn word(self) -> &'static str {
        match self {
            Status::Honoured => "honoured",
            Status::Stored => "stored",
            Status::Partial => "partial",
            Status::NotYet => "not yet",
            Status::Refused => "refused",
        }
    }
}

/// One field of the create request.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// `Config.Hostname`, `HostConfig.Memory`, `NetworkingConfig.EndpointsConfig.*.Aliases`.
    pub path: &'static str,
    /// The docker CLI flag that sets it (`--memory`), or "" if none does.
    pub flag: &'static str,
    pub status: Status,
    /// Which values, why, or which issue builds it.
    pub note: &'static str,
    /// The test that proves the effect (or the refusal).
    pub test: &'static str,
    /// A value the raw-HTTP test sends: honoured for `Honoured`, `Stored` and `Partial`,
    /// refused for `NotYet` and `Refused` (JSON; "" when the field cannot be sent alone).
    pub sample: &'static str,
    /// For `Partial`: a value refused as not supported yet (JSON).
    pub not_yet_sample: &'static str,
}

const fn f(
    path: &'static str,
    flag: &'static str,
    status: Status,
    note: &'static str,
    test: &'static str,
    sample: &'static str,
) -> Field {
    Field {
        path,
        flag,
        status,
        note,
        test,
        sample,
        not_yet_sample: "",
    }
}

const fn p(
    path: &'static str,
    flag: &'static str,
    note: &'static str,
    test: &'static str,
    sample: &'static str,
    not_yet_sample: &'static str,
) -> Field {
    Field {
        path,
        flag,
        status: Status::Partial,
        note,
        test,
        sample,
        not_yet_sample,
    }
}

use Status::{Honoured, NotYet, Refused, Stored};

const T_FIELDS: &str = "root_fields::every_field_is_honoured_or_refused";
const T_PORTS: &str = "root_network::published_ports_as_dockerd";
const T_LINKS: &str = "root_network::links_give_hosts_env_and_icc_ports";
const T_DNS: &str = "root_network::dns_and_hosts_options_reach_the_container";
const T_HEALTH: &str = "root_health::a_passing_check_turns_healthy";
const T_RESTART: &str = "root_restart::on_failure_restarts_n_times_then_stays_exited";
const T_CONFIG: &str = "root_fields::config_fields_reach_the_container";
const T_LIMITS: &str = "root_fields::resource_limits_reach_the_container";
const T_DEV: &str = "root_fields::shm_and_console_sizes_reach_the_container";
const T_NET: &str = "root_fields::network_modes_and_network_disabled";
const T_USERNET_IP: &str = "root_networks::containers_on_a_user_network_get_its_addresses";
const T_USERNET_ALIAS: &str = "root_networks::containers_on_a_user_network_get_its_addresses";
const T_RM: &str = "root_containers::the_docker_cli_runs_a_first_container";
const T_RO: &str = "root_fields::config_fields_reach_the_container";
const T_BIND: &str = "root_fields::binds_reach_the_container";
const T_VOL: &str = "root_images::volumes_and_mounts_as_dockerd";
const T_ULIMIT: &str = "root_process::ulimits_reach_the_container";
const T_GROUPS: &str = "root_process::users_and_added_groups_reach_the_container";
const T_SYSCTL: &str = "root_process::sysctls_and_oom_score_adj_reach_the_container";
const T_INIT: &str = "root_process::init_reaps_zombies_and_forwards_signals";
const T_NS: &str = "root_process::pid_ipc_and_uts_namespaces_are_shared_as_asked";
const T_CAPS: &str = "root_security::capabilities_default_drop_add_and_all";
const T_PRIV: &str = "root_security::privileged_gets_every_capability_and_device";
const T_SECOPT: &str = "root_security::seccomp_default_unconfined_and_custom_profile";
const T_PATHS: &str = "root_security::systempaths_unconfined_unmasks_proc";

/// Every field of the create request's Config (the body's top level).
pub const CONFIG: &[Field] = &[
    f(
        "Config.Hostname",
        "--hostname",
        Honoured,
        "the UTS hostname; default: the short id, or the host's name with --network host (as dockerd; `root_network::dns_and_hosts_options_reach_the_container`)",
        T_CONFIG,
        r#""hh""#,
    ),
    f(
        "Config.Domainname",
        "--domainname",
        Honoured,
        "the UTS domain name",
        T_CONFIG,
        r#""example.org""#,
    ),
    f(
        "Config.User",
        "--user",
        Honoured,
        "user[:group], names or ids, looked up in the container's /etc/passwd and /etc/group as dockerd does (its errors)",
        T_GROUPS,
        r#""1000:1000""#,
    ),
    f(
        "Config.AttachStdin",
        "--attach",
        Stored,
        "a client hint: the client attaches itself",
        T_FIELDS,
        "true",
    ),
    f(
        "Config.AttachStdout",
        "--attach",
        Stored,
        "a client hint",
        T_FIELDS,
        "true",
    ),
    f(
        "Config.AttachStderr",
        "--attach",
        Stored,
        "a client hint",
        T_FIELDS,
        "true",
    ),
    f(
        "Config.ExposedPorts",
        "--expose",
        Stored,
        "metadata, as in dockerd without -P (the `expose` filter of docker ps reads it)",
        T_FIELDS,
        r#"{"80/tcp":{}}"#,
    ),
    f(
        "Config.Tty",
        "--tty",
        Honoured,
        "a pty for stdio",
        "root_exec::tty_output_is_raw",
        "true",
    ),
    f(
        "Config.OpenStdin",
        "--interactive",
        Honoured,
        "stdin kept open",
        "root_containers::stdin_reaches_the_container_through_the_hijacked_attach",
        "true",
    ),
    f(
        "Config.StdinOnce",
        "",
        Honoured,
        "stdin closed when the first attached client closes it",
        "root_containers::stdin_reaches_the_container_through_the_hijacked_attach",
        "true",
    ),
    f(
        "Config.Env",
        "--env",
        Honoured,
        "merged over the image's; a bare NAME (unset on the client) is kept as dockerd keeps it",
        T_CONFIG,
        r#"["A=1"]"#,
    ),
    f(
        "Config.Cmd",
        "",
        Honoured,
        "the command (a plain string is a list of one)",
        T_CONFIG,
        r#"["true"]"#,
    ),
    f(
        "Config.Healthcheck",
        "--health-cmd",
        Honoured,
        "CMD, CMD-SHELL (/bin/sh -c) and NONE, run as execs; dockerd's defaults (interval 30s, timeout 30s, retries 3, start period 0), merged with the image's HEALTHCHECK",
        T_HEALTH,
        r#"{"Test":["CMD","true"]}"#,
    ),
    f(
        "Config.ArgsEscaped",
        "",
        Stored,
        "Windows only",
        T_FIELDS,
        "true",
    ),
    f(
        "Config.Image",
        "",
        Honoured,
        "by name:tag, id or unique id prefix",
        T_CONFIG,
        "",
    ),
    f(
        "Config.Volumes",
        "--volume /path",
        Honoured,
        "an anonymous volume at each path nothing else mounts (the image's `VOLUME`s too), filled from the image; removed by `docker rm -v`",
        T_VOL,
        r#"{"/data":{}}"#,
    ),
    f(
        "Config.WorkingDir",
        "--workdir",
        Honoured,
        "made if missing; must be absolute",
        T_CONFIG,
        r#""/tmp""#,
    ),
    f(
        "Config.Entrypoint",
        "--entrypoint",
        Honoured,
        "replaces the image's, and its Cmd",
        T_CONFIG,
        r#"["/bin/true"]"#,
    ),
    f(
        "Config.NetworkDisabled",
        "",
        Honoured,
        "true: the container gets no network (as --network none)",
        T_NET,
        "true",
    ),
    f(
        "Config.MacAddress",
        "--mac-address",
        Honoured,
        "eth0's MAC on the bridge (inspect's MacAddress); not a MAC: dockerd's `X is not a valid mac address`, a multicast one refused; with --network host dockerd's conflict, with none refused (no interface)",
        "root_network::mac_address_reaches_eth0",
        // Not sent alone: it needs a bridge, which the fields test's daemon has not.
        "",
    ),
    f(
        "Config.OnBuild",
        "",
        Stored,
        "used by builds, not by containers",
        T_FIELDS,
        r#"["RUN true"]"#,
    ),
    f(
        "Config.Labels",
        "--label",
        Honoured,
        "merged over the image's; shown by ps and inspect, matched by label filters",
        T_CONFIG,
        r#"{"k":"v"}"#,
    ),
    f(
        "Config.StopSignal",
        "--stop-signal",
        Honoured,
        "sent by docker stop; checked at create",
        T_CONFIG,
        r#""SIGUSR1""#,
    ),
    f(
        "Config.StopTimeout",
        "--stop-timeout",
        Honoured,
        "seconds docker stop waits before SIGKILL",
        T_CONFIG,
        "3",
    ),
    f(
        "Config.Shell",
        "",
        Stored,
        "used by builds, not by containers",
        T_FIELDS,
        r#"["/bin/sh","-c"]"#,
    ),
];

/// Every field of HostConfig (with the embedded Resources).
pub const HOST_CONFIG: &[Field] = &[
    f(
        "HostConfig.CpuShares",
        "--cpu-shares",
        Honoured,
        "cpu.shares (v1) or cpu.weight (v2)",
        T_LIMITS,
        "512",
    ),
    f(
        "HostConfig.Memory",
        "--memory",
        Honoured,
        "memory limit; at least 6MB (dockerd's message)",
        T_LIMITS,
        "67108864",
    ),
    f(
        "HostConfig.CgroupParent",
        "--cgroup-parent",
        Honoured,
        "the container's cgroup is `<parent>/<id>` in every hierarchy, as dockerd's cgroupfs driver places it: an absolute parent from each hierarchy's root, a relative one below berthd's own cgroup; the parent stays after the container",
        "root_cgroups::cgroup_parent_holds_the_container_and_is_left_after",
        r#""/mine""#,
    ),
    f(
        "HostConfig.BlkioWeight",
        "--blkio-weight",
        Honoured,
        "v1 blkio.bfq.weight or blkio.weight, v2 io.bfq.weight or io.weight (converted as runc does); refused naming it where the host has no weight file (no BFQ or CFQ, as on this test host), with dockerd's warning as the reason",
        "root_cgroups::blkio_settings_reach_the_cgroup_or_are_refused_with_the_reason",
        "",
    ),
    f(
        "HostConfig.BlkioWeightDevice",
        "--blkio-weight-device",
        Honoured,
        "v1 blkio.bfq.weight_device or blkio.weight_device, v2 io.bfq.weight or io.weight per device; refused naming it where the host has no such file, as BlkioWeight",
        "root_cgroups::blkio_settings_reach_the_cgroup_or_are_refused_with_the_reason",
        "",
    ),
    f(
        "HostConfig.BlkioDeviceReadBps",
        "--device-read-bps",
        Honoured,
        "v1 blkio.throttle.read_bps_device, v2 `rbps=` in io.max; the device is looked up at the start (dockerd's `stat` error)",
        "root_cgroups::blkio_settings_reach_the_cgroup_or_are_refused_with_the_reason",
        r#"[{"Path":"/dev/null","Rate":1048576}]"#,
    ),
    f(
        "HostConfig.BlkioDeviceWriteBps",
        "--device-write-bps",
        Honoured,
        "v1 blkio.throttle.write_bps_device, v2 `wbps=` in io.max; the device is looked up at the start (dockerd's `stat` error)",
        "root_cgroups::blkio_settings_reach_the_cgroup_or_are_refused_with_the_reason",
        r#"[{"Path":"/dev/null","Rate":1048576}]"#,
    ),
    f(
        "HostConfig.BlkioDeviceReadIOps",
        "--device-read-iops",
        Honoured,
        "v1 blkio.throttle.read_iops_device, v2 `riops=` in io.max; the device is looked up at the start (dockerd's `stat` error)",
        "root_cgroups::blkio_settings_reach_the_cgroup_or_are_refused_with_the_reason",
        r#"[{"Path":"/dev/null","Rate":100}]"#,
    ),
    f(
        "HostConfig.BlkioDeviceWriteIOps",
        "--device-write-iops",
        Honoured,
        "v1 blkio.throttle.write_iops_device, v2 `wiops=` in io.max; the device is looked up at the start (dockerd's `stat` error)",
        "root_cgroups::blkio_settings_reach_the_cgroup_or_are_refused_with_the_reason",
        r#"[{"Path":"/dev/null","Rate":100}]"#,
    ),
    f(
        "HostConfig.CpuPeriod",
        "--cpu-period",
        Honoured,
        "CFS period (1000 to 1000000 µs)",
        T_LIMITS,
        "50000",
    ),
    f(
        "HostConfig.CpuQuota",
        "--cpu-quota",
        Honoured,
        "CFS quota (at least 1000 µs)",
        T_LIMITS,
        "25000",
    ),
    f(
        "HostConfig.CpuRealtimePeriod",
        "--cpu-rt-period",
        NotYet,
        "issue 14",
        T_FIELDS,
        "1000000",
    ),
    f(
        "HostConfig.CpuRealtimeRuntime",
        "--cpu-rt-runtime",
        NotYet,
        "issue 14",
        T_FIELDS,
        "950000",
    ),
    f(
        "HostConfig.CpusetCpus",
        "--cpuset-cpus",
        Honoured,
        "cpuset.cpus (v1: the container joins the cpuset hierarchy, its new parents filled from theirs); dockerd's checks against the host's CPUs",
        "root_cgroups::cpuset_cpus_reach_the_container",
        r#""0""#,
    ),
    f(
        "HostConfig.CpusetMems",
        "--cpuset-mems",
        Honoured,
        "cpuset.mems, as CpusetCpus",
        "root_cgroups::cpuset_cpus_reach_the_container",
        r#""0""#,
    ),
    f(
        "HostConfig.Devices",
        "--device",
        Honoured,
        "the host's node (or every node below a directory) made in the container with its mode and owner, and allowed with CgroupPermissions (v1 devices.allow, v2 the eBPF device program)",
        "root_cgroups::devices_are_made_and_allowed_and_others_refused",
        r#"[{"PathOnHost":"/dev/null","PathInContainer":"/dev/xnull","CgroupPermissions":"rwm"}]"#,
    ),
    f(
        "HostConfig.DeviceCgroupRules",
        "--device-cgroup-rule",
        Honoured,
        "rules allowed besides Docker's defaults (dockerd's format check)",
        "root_cgroups::device_cgroup_rules_allow_what_they_name",
        r#"["c 1:3 rwm"]"#,
    ),
    f(
        "HostConfig.DeviceRequests",
        "--gpus",
        NotYet,
        "no device drivers (GPUs) in berthd",
        T_FIELDS,
        r#"[{"Driver":"nvidia","Count":-1}]"#,
    ),
    f(
        "HostConfig.KernelMemory",
        "--kernel-memory",
        Refused,
        "kernel memory limits are deprecated by the kernel and absent on cgroup v2",
        T_FIELDS,
        "67108864",
    ),
    f(
        "HostConfig.KernelMemoryTCP",
        "",
        Refused,
        "as KernelMemory",
        T_FIELDS,
        "67108864",
    ),
    f(
        "HostConfig.MemoryReservation",
        "--memory-reservation",
        Honoured,
        "v1 memory.soft_limit_in_bytes, v2 memory.low; dockerd's checks",
        "root_cgroups::memory_settings_reach_the_cgroup",
        "33554432",
    ),
    f(
        "HostConfig.MemorySwap",
        "--memory-swap",
        Honoured,
        "memory plus swap; 0 with a memory limit: twice the limit, -1: unlimited, as dockerd",
        T_LIMITS,
        "134217728",
    ),
    f(
        "HostConfig.MemorySwappiness",
        "--memory-swappiness",
        Honoured,
        "v1 memory.swappiness; refused naming it on cgroup v2, which has none (dockerd's warning as the reason); -1 and null are the default",
        "root_cgroups::memory_settings_reach_the_cgroup",
        "",
    ),
    f(
        "HostConfig.NanoCpus",
        "--cpus",
        Honoured,
        "a CFS quota over a 100 ms period",
        T_LIMITS,
        "500000000",
    ),
    f(
        "HostConfig.OomKillDisable",
        "--oom-kill-disable",
        Honoured,
        "v1 memory.oom_control; refused naming it on cgroup v2, which has none (dockerd's warning as the reason)",
        "root_cgroups::memory_settings_reach_the_cgroup",
        "",
    ),
    f(
        "HostConfig.Init",
        "--init",
        Honoured,
        "pid 1 is a reaper (the container init itself, forked: `berthd-init -- cmd`) that forwards signals, reaps orphans and exits with the command's status",
        T_INIT,
        "true",
    ),
    f(
        "HostConfig.PidsLimit",
        "--pids-limit",
        Honoured,
        "pids.max; 0 and -1 mean no limit",
        T_LIMITS,
        "50",
    ),
    f(
        "HostConfig.Ulimits",
        "--ulimit",
        Honoured,
        "every name dockerd knows, set before the exec, the daemon's --default-ulimit merged in; a hard limit above berthd's own is refused when berthd lacks CAP_SYS_RESOURCE",
        T_ULIMIT,
        r#"[{"Name":"nofile","Soft":1024,"Hard":1024}]"#,
    ),
    f(
        "HostConfig.CpuCount",
        "",
        Refused,
        "Windows only",
        T_FIELDS,
        "2",
    ),
    f(
        "HostConfig.CpuPercent",
        "",
        Refused,
        "Windows only",
        T_FIELDS,
        "50",
    ),
    f(
        "HostConfig.IOMaximumIOps",
        "",
        Refused,
        "Windows only (dockerd's message)",
        T_FIELDS,
        "100",
    ),
    f(
        "HostConfig.IOMaximumBandwidth",
        "",
        Refused,
        "Windows only (dockerd's message)",
        T_FIELDS,
        "1048576",
    ),
    f(
        "HostConfig.Binds",
        "--volume",
        Honoured,
        "host paths (`/host:/ctr[:opts]`) and named volumes (`name:/ctr[:opts]`, made when missing and filled from the image unless `nocopy`); dockerd's modes (ro/rw, z/Z, a propagation, copy/nocopy, a consistency)",
        T_BIND,
        r#"["/tmp:/hosttmp:ro"]"#,
    ),
    f(
        "HostConfig.ContainerIDFile",
        "--cidfile",
        Stored,
        "the CLI writes the file itself",
        T_FIELDS,
        r#""/tmp/x.cid""#,
    ),
    p(
        "HostConfig.LogConfig",
        "--log-driver",
        "json-file (the default; `--log-opt max-size`, `max-file`, `compress` (gzipped rotated files), `labels`, `labels-regex`, `env`, `env-regex`, `tag` (`{{.Field}}` of dockerd's ID, FullID, Name, ImageID, ImageFullID, ImageName, DaemonName, Command; each entry's `attrs`, shown by `docker logs --details`), `mode=blocking`, rotated as dockerd names the files) and none (no log kept; `docker logs` gets dockerd's 501) honoured; the daemon's `--log-driver`/`--log-opt` merged in as dockerd; bad options get dockerd's words (at create, where dockerd refuses the values at start); a `tag` with template functions, `mode=non-blocking`, the log cache's `cache-*` and dockerd's other drivers (`local`, `syslog`, `journald`, …) not yet",
        "root_logs::max_size_and_max_file_bound_the_log_on_disk",
        r#"{"Type":"json-file","Config":{"max-size":"10m","max-file":"3"}}"#,
        r#"{"Type":"local","Config":{}}"#,
    ),
    p(
        "HostConfig.NetworkMode",
        "--network",
        "default, bridge, none and host honoured (under `-b none` the default is a namespace with only lo, as dockerd); container:<name|id> honoured (its namespace, hostname, hosts and resolv.conf; dockerd's conflicts refused; `root_network::container_network_mode_shares_the_namespace_name_and_files`); a user-defined network by name, id or id prefix honoured (eth0 on its bridge, its embedded DNS, published ports; `root_networks::containers_on_a_user_network_get_its_addresses`); an unknown name is `network NAME not found` (400)",
        T_NET,
        r#""none""#,
        "",
    ),
    f(
        "HostConfig.PortBindings",
        "--publish",
        Honoured,
        "`[ip:]hostport:port[/proto]` (tcp, udp or sctp), host port ranges, an empty host port (one the kernel picks); a kernel DNAT in berth's chains, the host port held by a bound socket (dockerd's `port is already allocated` / `address already in use`, 409), reachable at 127.0.0.1 and from other containers; IPv4 host addresses only; refused with `--network host`, `none` and `container:`, and with `--iptables=false`; on a user-defined network too, in its bridge's chains",
        T_PORTS,
        // Not sent alone: it needs a bridge, which the fields test's daemon has not.
        "",
    ),
    f(
        "HostConfig.RestartPolicy",
        "--restart",
        Honoured,
        "no, always, unless-stopped, on-failure[:N], with dockerd's back-off (100 ms doubling, reset after a 10 s run); restarted at berthd's start as dockerd restores (always; unless-stopped unless stopped by the user; on-failure after a non-zero exit, a user's stop included)",
        T_RESTART,
        r#"{"Name":"on-failure","MaximumRetryCount":2}"#,
    ),
    f(
        "HostConfig.AutoRemove",
        "--rm",
        Honoured,
        "removed once it exits",
        T_RM,
        "true",
    ),
    f(
        "HostConfig.VolumeDriver",
        "--volume-driver",
        Honoured,
        "`local`, berthd's only volume driver; another is dockerd's `error looking up volume plugin X: plugin \"X\" not found` (404) when a volume is made",
        T_VOL,
        r#""local""#,
    ),
    f(
        "HostConfig.VolumesFrom",
        "--volumes-from",
        Honoured,
        "`name[:ro|rw]`: the other container's mounts (read-only with `ro`); an unknown container is a 404",
        T_VOL,
        "",
    ),
    f(
        "HostConfig.Mounts",
        "--mount",
        Honoured,
        "`bind` (propagation, non-recursive, readonly; the source must exist), `volume` (named or anonymous, labels, the local driver's options, nocopy), `tmpfs` (size, mode, readonly), with dockerd's checks and texts; other types refused",
        T_VOL,
        r#"[{"Type":"tmpfs","Target":"/scratch"}]"#,
    ),
    f(
        "HostConfig.CapAdd",
        "--cap-add",
        Honoured,
        "names with or without CAP_, in any case, and ALL, combined with CapDrop as dockerd does; ALL is every capability berthd's own bounding set holds, and a capability it lacks is refused",
        T_CAPS,
        r#"["CAP_NET_ADMIN"]"#,
    ),
    f(
        "HostConfig.CapDrop",
        "--cap-drop",
        Honoured,
        "names with or without CAP_, in any case, and ALL (then only CapAdd's)",
        T_CAPS,
        r#"["CAP_CHOWN"]"#,
    ),
    f(
        "HostConfig.CgroupnsMode",
        "--cgroupns",
        Honoured,
        "private (a cgroup namespace of its own) or host; left empty, dockerd's default: private on a v2-only host, host on v1 and hybrid hosts. Either way /sys/fs/cgroup shows the container's own cgroups, read-only",
        "root_cgroups::cgroupns_private_shows_the_container_at_the_root",
        r#""private""#,
    ),
    f(
        "HostConfig.Dns",
        "--dns",
        Honoured,
        "the nameservers of /etc/resolv.conf (else the daemon's --dns, else the host's less its loopback ones, else 8.8.8.8 and 8.8.4.4, as dockerd); an entry that is not an IP address is refused",
        T_DNS,
        r#"["192.0.2.53"]"#,
    ),
    f(
        "HostConfig.DnsOptions",
        "--dns-option",
        Honoured,
        "the `options` line of /etc/resolv.conf (else the host's)",
        T_DNS,
        r#"["ndots:2"]"#,
    ),
    f(
        "HostConfig.DnsSearch",
        "--dns-search",
        Honoured,
        "the `search` line of /etc/resolv.conf (else the host's; `.` alone: none)",
        T_DNS,
        r#"["example.org"]"#,
    ),
    f(
        "HostConfig.ExtraHosts",
        "--add-host",
        Honoured,
        "`name:ip` or `name=ip` lines in /etc/hosts before the container's own; `host-gateway` is the bridge's address; dockerd's `bad format for add-host` / `invalid IP address in add-host` (400)",
        T_DNS,
        r#"["foo.example:192.0.2.3"]"#,
    ),
    f(
        "HostConfig.GroupAdd",
        "--group-add",
        Honoured,
        "names or gids, looked up in the container's /etc/group",
        T_GROUPS,
        r#"["10"]"#,
    ),
    f(
        "HostConfig.IpcMode",
        "--ipc",
        Honoured,
        "private, shareable, none (no /dev/shm), host (the host's /dev/shm) and container:<name> (a running shareable container's IPC namespace and /dev/shm; kept as container:<id>)",
        T_NS,
        r#""shareable""#,
    ),
    f(
        "HostConfig.Cgroup",
        "--cgroup",
        NotYet,
        "issue 14",
        T_FIELDS,
        r#""container:x""#,
    ),
    f(
        "HostConfig.Links",
        "--link",
        Honoured,
        "`name[:alias]`: the child in /etc/hosts (alias, hostname, name), dockerd's legacy variables (`ALIAS_PORT_80_TCP=...`, `ALIAS_NAME`, `ALIAS_ENV_*`), with --icc=false exactly the child's exposed ports opened; kept in the graph db, gone with either container or `docker rm --link /parent/alias`; the child must exist (dockerd's `could not get container for X`, 400) and run at each start (`Cannot link to a non running container`, 409); refused with --network host and container:",
        T_LINKS,
        // Not sent alone: it needs a child container.
        "",
    ),
    f(
        "HostConfig.OomScoreAdj",
        "--oom-score-adj",
        Honoured,
        "the init's /proc/self/oom_score_adj (-1000 to 1000); lowering it below berthd's own needs CAP_SYS_RESOURCE",
        T_SYSCTL,
        "100",
    ),
    f(
        "HostConfig.PidMode",
        "--pid",
        Honoured,
        "a new pid namespace (the default), host, or container:<name> (a running container's; kept as container:<id>)",
        T_NS,
        r#""host""#,
    ),
    f(
        "HostConfig.Privileged",
        "--privileged",
        Honoured,
        "every capability berthd's own bounding set holds, the host's devices in /dev and the devices cgroup open, no masked or read-only paths, no seccomp filter (unless SecurityOpt names one), /sys writable",
        T_PRIV,
        "true",
    ),
    f(
        "HostConfig.PublishAllPorts",
        "--publish-all",
        Honoured,
        "every exposed port without a binding is published on a port the kernel picks",
        T_PORTS,
        "true",
    ),
    f(
        "HostConfig.ReadonlyRootfs",
        "--read-only",
        Honoured,
        "the rootfs mounted read-only; no writable /tmp is added (as dockerd: --tmpfs /tmp asks for one)",
        T_RO,
        "true",
    ),
    p(
        "HostConfig.SecurityOpt",
        "--security-opt",
        "no-new-privileges[=bool], seccomp=<profile JSON> (the CLI sends the file's content), unconfined or builtin, apparmor=unconfined and label=disable honoured; other AppArmor profiles and SELinux labels refused: berthd applies neither",
        T_SECOPT,
        r#"["no-new-privileges"]"#,
        r#"["label=level:s0:c100"]"#,
    ),
    f(
        "HostConfig.StorageOpt",
        "--storage-opt",
        NotYet,
        "per-container storage options (`size` needs project quotas on the data root): in no open issue yet",
        T_FIELDS,
        r#"{"size":"1G"}"#,
    ),
    f(
        "HostConfig.Tmpfs",
        "--tmpfs",
        Honoured,
        "a tmpfs per path, `noexec,nosuid,nodev` unless the options say otherwise; tmpfs's own options (size, mode, uid, gid, nr_inodes, …) and the mount flags; anything else refused",
        T_VOL,
        r#"{"/run":"rw"}"#,
    ),
    f(
        "HostConfig.UTSMode",
        "--uts",
        Honoured,
        "a new UTS namespace (the default) or host (no hostname set; --hostname refused with it, as dockerd)",
        T_NS,
        r#""host""#,
    ),
    f(
        "HostConfig.UsernsMode",
        "--userns",
        Honoured,
        "host, what every container gets: berthd has no user-namespace remapping yet (issue 18)",
        T_FIELDS,
        r#""host""#,
    ),
    f(
        "HostConfig.ShmSize",
        "--shm-size",
        Honoured,
        "the size of /dev/shm; default 64 MiB",
        T_DEV,
        "33554432",
    ),
    f(
        "HostConfig.Sysctls",
        "--sysctl",
        Honoured,
        "namespaced ones only (dockerd's whitelist: net.*, fs.mqueue.*, the kernel IPC ones), written in the container's namespaces before the exec; net.* refused with --network host, the IPC ones with --ipc host",
        T_SYSCTL,
        r#"{"net.ipv4.ip_forward":"1"}"#,
    ),
    f(
        "HostConfig.Runtime",
        "--runtime",
        Honoured,
        "a runtime of the daemon: native (berthd's own monitor, unless --exec-driver oci) or an OCI runtime of --add-runtime / daemon.json runtimes (runc with --exec-driver oci), run on a generated bundle; default: --default-runtime. Another name: dockerd's `Unknown runtime specified X`",
        "root_oci::the_runtime_flag_picks_an_oci_runtime_beside_native",
        r#""native""#,
    ),
    f(
        "HostConfig.ConsoleSize",
        "",
        Honoured,
        "the pty's size before the first resize",
        T_DEV,
        "[30,100]",
    ),
    p(
        "HostConfig.Isolation",
        "--isolation",
        "default honoured; others are Windows only (dockerd's message)",
        T_FIELDS,
        r#""default""#,
        r#""hyperv""#,
    ),
    f(
        "HostConfig.MaskedPaths",
        "--security-opt systempaths=unconfined",
        Honoured,
        "any list; [] from systempaths=unconfined; unset: berthd's list (dockerd 20.10's and the powercap files), none for a privileged container",
        T_PATHS,
        r#"["/proc/kcore","/sys/firmware"]"#,
    ),
    f(
        "HostConfig.ReadonlyPaths",
        "--security-opt systempaths=unconfined",
        Honoured,
        "any list; [] from systempaths=unconfined; unset: Docker's list, none for a privileged container",
        T_PATHS,
        r#"["/proc/sys"]"#,
    ),
];

/// Every field of NetworkingConfig's endpoint settings (`EndpointsConfig.<network>`).
pub const NETWORKING_CONFIG: &[Field] = &[
    p(
        "NetworkingConfig.EndpointsConfig",
        "--network",
        "one entry, for the container's own network, honoured; more not yet (issue 15)",
        T_NET,
        r#"{"none":{}}"#,
        r#"{"none":{},"other":{}}"#,
    ),
    p(
        "NetworkingConfig.EndpointsConfig.*.IPAMConfig",
        "--ip",
        "IPv4Address on a user-defined network with a subnet given at its create (dockerd's rule); IPv6Address and LinkLocalIPs not yet",
        T_USERNET_IP,
        "",
        r#"{"IPv6Address":"fd00::9"}"#,
    ),
    f(
        "NetworkingConfig.EndpointsConfig.*.Links",
        "--link",
        NotYet,
        "issue 15",
        T_FIELDS,
        r#"["other:alias"]"#,
    ),
    f(
        "NetworkingConfig.EndpointsConfig.*.Aliases",
        "--network-alias",
        Honoured,
        "on a user-defined network (elsewhere dockerd's refusal): the names answered by its embedded DNS and shown in Aliases",
        T_USERNET_ALIAS,
        "",
    ),
    f(
        "NetworkingConfig.EndpointsConfig.*.NetworkID",
        "",
        Stored,
        "set by the daemon; ignored in a request, as dockerd ignores it",
        T_FIELDS,
        r#""x""#,
    ),
    f(
        "NetworkingConfig.EndpointsConfig.*.EndpointID",
        "",
        Stored,
        "set by the daemon; ignored in a request",
        T_FIELDS,
        r#""x""#,
    ),
    f(
        "NetworkingConfig.EndpointsConfig.*.Gateway",
        "",
        Stored,
        "set by the daemon; ignored in a request",
        T_FIELDS,
        r#""10.0.0.1""#,
    ),
    f(
        "NetworkingConfig.EndpointsConfig.*.IPAddress",
        "",
        Stored,
        "set by the daemon; ignored in a request",
        T_FIELDS,
        r#""10.0.0.2""#,
    ),
    f(
        "NetworkingConfig.EndpointsConfig.*.IPPrefixLen",
        "",
        Stored,
        "set by the daemon; ignored in a request",
        T_FIELDS,
        "24",
    ),
    f(
        "NetworkingConfig.EndpointsConfig.*.IPv6Gateway",
        "",
        Stored,
        "set by the daemon; ignored in a request",
        T_FIELDS,
        r#""fe80::1""#,
    ),
    f(
        "NetworkingConfig.EndpointsConfig.*.GlobalIPv6Address",
        "",
        Stored,
        "set by the daemon; ignored in a request",
        T_FIELDS,
        r#""fe80::2""#,
    ),
    f(
        "NetworkingConfig.EndpointsConfig.*.GlobalIPv6PrefixLen",
        "",
        Stored,
        "set by the daemon; ignored in a request",
        T_FIELDS,
        "64",
    ),
    f(
        "NetworkingConfig.EndpointsConfig.*.MacAddress",
        "--mac-address",
        NotYet,
        "issue 15",
        T_FIELDS,
        r#""02:42:ac:11:00:99""#,
    ),
    f(
        "NetworkingConfig.EndpointsConfig.*.DriverOpts",
        "--network driver options",
        NotYet,
        "issue 15",
        T_FIELDS,
        r#"{"a":"b"}"#,
    ),
];

/// The whole table, in the order the docs list it.
pub fn all() -> impl Iterator<Item = &'static Field> {
    CONFIG.iter().chain(HOST_CONFIG).chain(NETWORKING_CONFIG)
}

/// The entry of `path`.
pub fn get(path: &str) -> Option<&'static Field> {
    all().find(|f| f.path == path)
}

/// The rows of docs/api-fields.md for `fields`: `| `path` | flag | status | notes |`.
pub fn markdown_rows(fields: &[Field]) -> String {
    let mut out = String::new();
    for f in fields {
        let flag = if f.flag.is_empty() {
            "-".to_owned()
        } else {
            format!("`{}`", f.flag)
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {}; test: `{}` |\n",
            f.path,
            flag,
            f.status.word(),
            f.note,
            f.test
        ));
    }
    out
}

/// A create body (for a `-b none` daemon) that sets the field `path` to `value`, with
/// what the field needs beside it: what the table's tests send.
pub fn sample_body(path: &str, value: serde_json::Value) -> serde_json::Value {
    let mut body = serde_json::json!({
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}
    });
    if let Some(key) = path.strip_prefix("Config.") {
        body[key] = value;
    } else if let Some(key) = path.strip_prefix("HostConfig.") {
        body["HostConfig"][key] = value;
        if key == "MemorySwap" {
            body["HostConfig"]["Memory"] = serde_json::json!(67108864);
        }
    } else if let Some(key) = path.strip_prefix("NetworkingConfig.EndpointsConfig.*.") {
        body["NetworkingConfig"] = serde_json::json!({"EndpointsConfig": {"none": {key: value}}});
    } else {
        body["NetworkingConfig"] = serde_json::json!({"EndpointsConfig": value});
    }
    body
}

/// "HostConfig.Ulimits (--ulimit)": how an error names a field.
pub fn display_name(field: &Field) -> String {
    let flag = field.flag.split_whitespace().next().unwrap_or("");
    if flag.starts_with("--") && !field.path.contains('*') {
        format!("{} ({flag})", field.path)
    } else {
        field.path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::api;
    use serde::de::{self, Deserialize, Deserializer, Visitor};

    /// A deserializer that records the field names a struct asks for, then fails: serde's
    /// derive hands them to `deserialize_struct`, which is the only way to list a type's
    /// fields without a value.
    struct FieldNames(std::cell::RefCell<Vec<&'static str>>);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> Deserializer<'de> for &FieldNames {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.borrow_mut().extend_from_slice(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    fn fields_of<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
        let names = FieldNames(std::cell::RefCell::new(Vec::new()));
        let _ = T::deserialize(&names);
        names.0.into_inner()
    }

    #[test]
    fn every_model_field_is_in_the_table() {
        let mut missing = Vec::new();
        for (prefix, names) in [
            ("Config.", fields_of::<api::ContainerConfig>()),
            ("HostConfig.", fields_of::<api::HostConfig>()),
            ("NetworkingConfig.", fields_of::<api::NetworkingConfig>()),
            (
                "NetworkingConfig.EndpointsConfig.*.",
                fields_of::<api::EndpointSettings>(),
            ),
        ] {
            assert!(!names.is_empty(), "{prefix}");
            for n in names {
                let path = format!("{prefix}{n}");
                if get(&path).is_none() {
                    missing.push(path);
                }
            }
        }
        assert!(
            missing.is_empty(),
            "fields missing from the table: {missing:?}"
        );
        // And nothing in the table that the models lack.
        let known: Vec<String> = [
            ("Config.", fields_of::<api::ContainerConfig>()),
            ("HostConfig.", fields_of::<api::HostConfig>()),
            ("NetworkingConfig.", fields_of::<api::NetworkingConfig>()),
            (
                "NetworkingConfig.EndpointsConfig.*.",
                fields_of::<api::EndpointSettings>(),
            ),
        ]
        .into_iter()
        .flat_map(|(p, ns)| ns.into_iter().map(move |n| format!("{p}{n}")))
        .collect();
        for f in all() {
            assert!(
                known.contains(&f.path.to_owned()),
                "{} is not a model field",
                f.path
            );
        }
    }

    #[test]
    fn samples_are_json_and_partials_have_a_refused_value() {
        for f in all() {
            if !f.sample.is_empty() {
                assert!(
                    serde_json::from_str::<serde_json::Value>(f.sample).is_ok(),
                    "{}",
                    f.path
                );
            }
            if f.status == Status::Partial && !f.not_yet_sample.is_empty() {
                assert!(
                    serde_json::from_str::<serde_json::Value>(f.not_yet_sample).is_ok(),
                    "{}",
                    f.path
                );
            }
        }
    }

    /// Prints the table's rows for docs/api-fields.md:
    /// `cargo test --lib print_field_table -- --ignored --nocapture`.
    #[test]
    #[ignore = "prints the docs table"]
    fn print_field_table() {
        for (title, fields) in [
            ("Config", CONFIG),
            ("HostConfig", HOST_CONFIG),
            ("NetworkingConfig", NETWORKING_CONFIG),
        ] {
            println!("## {title}\n\n| field | CLI flag | status | notes |\n|---|---|---|---|");
            print!("{}", markdown_rows(fields));
            println!();
        }
    }

    /// docs/api-fields.md lists every field with the status the code gives it.
    #[test]
    fn the_docs_table_says_what_the_code_does() {
        let doc = include_str!("../../docs/api-fields.md");
        let mut rows = std::collections::HashMap::new();
        for line in doc.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // | `path` | flag | status | notes |
            if cells.len() >= 5 {
                if let Some(path) = cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
                    rows.insert(path.to_owned(), cells[3].to_owned());
                }
            }
        }
        let mut wrong = Vec::new();
        for f in all() {
            match rows.get(f.path) {
                Some(s) if s == f.status.word() => {}
                other => wrong.push(format!(
                    "{}: docs {:?}, code {}",
                    f.path,
                    other,
                    f.status.word()
                )),
            }
        }
        assert!(wrong.is_empty(), "docs/api-fields.md disagrees: {wrong:#?}");
    }
}
