//! The JSON of `GET /containers/{id}/stats` as dockerd shapes it (types.StatsJSON): built
//! from the counters of the container's cgroup (`sys::cgroup_live`), the host's processor
//! time and the interfaces of the container's network namespace.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::actors::store::state::docker_time;
use crate::sys::cgroup_live::{BlkioEntry, BlkioSample, CgroupSample, NetCounters};

/// One reading: what the cgroup counted, the host's processor time and the networks.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub at: Option<DateTime<Utc>>,
    pub cgroup: CgroupSample,
    pub system_cpu_usage: u64,
    pub online_cpus: u32,
    pub networks: Vec<(String, NetCounters)>,
}

/// The v1 blkio lists dockerd always names (empty or null when nothing was counted).
const BLKIO_LISTS: &[&str] = &[
    "io_service_bytes_recursive",
    "io_serviced_recursive",
    "io_queue_recursive",
    "io_service_time_recursive",
    "io_wait_time_recursive",
    "io_merged_recursive",
    "io_time_recursive",
    "sectors_recursive",
];

fn blkio_entries(list: &[BlkioEntry]) -> Value {
    Value::Array(
        list.iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect(),
    )
}

fn blkio_stats(s: Option<&BlkioSample>) -> Value {
    let mut m = Map::new();
    for name in BLKIO_LISTS {
        m.insert((*name).to_owned(), Value::Null);
    }
    match s {
        Some(BlkioSample::V1(lists)) => {
            for name in BLKIO_LISTS {
                m.insert((*name).to_owned(), Value::Array(Vec::new()));
            }
            for (name, list) in lists {
                m.insert((*name).to_owned(), blkio_entries(list));
            }
        }
        Some(BlkioSample::V2(list)) => {
            m.insert(BLKIO_LISTS[0].to_owned(), blkio_entries(list));
        }
        None => {}
    }
    Value::Object(m)
}

/// `cpu_stats` (or `precpu_stats`) of a reading; `None` gives dockerd's zero value.
fn cpu_stats(r: Option<&Reading>) -> Value {
    let Some(r) = r else {
        return json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        });
    };
    let c = r.cgroup.cpu.clone().unwrap_or_default();
    let mut usage = json!({
        "total_usage": c.total,
        "usage_in_kernelmode": c.kernel,
        "usage_in_usermode": c.user,
    });
    if !c.percpu.is_empty() {
        usage["percpu_usage"] = json!(c.percpu);
    }
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": r.system_cpu_usage,
        "online_cpus": r.online_cpus,
        "throttling_data": {
            "periods": c.periods,
            "throttled_periods": c.throttled_periods,
            "throttled_time": c.throttled_time,
        },
    })
}

/// `memory_stats`: the limit is the host's memory when the cgroup has none (or a larger
/// one), as dockerd reports it.
fn memory_stats(r: &Reading, host_memory: u64) -> Value {
    let Some(m) = &r.cgroup.memory else {
        return json!({});
    };
    let stats: BTreeMap<&str, u64> = m.stat.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let limit = if host_memory > 0 && m.limit > host_memory {
        host_memory
    } else {
        m.limit
    };
    let mut v = json!({"usage": m.usage, "stats": stats, "limit": limit});
    if let Some(max) = m.max_usage {
        v["max_usage"] = json!(max);
    }
    if m.failcnt > 0 {
        v["failcnt"] = json!(m.failcnt);
    }
    v
}

fn pids_stats(r: &Reading) -> Value {
    match r.cgroup.pids {
        Some((current, limit)) => {
            let mut v = json!({"current": current});
            if let Some(l) = limit {
                v["limit"] = json!(l);
            }
            v
        }
        None => json!({}),
    }
}

fn networks(r: &Reading) -> Option<Value> {
    if r.networks.is_empty() {
        return None;
    }
    let m: Map<String, Value> = r
        .networks
        .iter()
        .map(|(name, c)| {
            (
                name.clone(),
                json!({
                    "rx_bytes": c.rx_bytes, "rx_packets": c.rx_packets,
                    "rx_errors": c.rx_errors, "rx_dropped": c.rx_dropped,
                    "tx_bytes": c.tx_bytes, "tx_packets": c.tx_packets,
                    "tx_errors": c.tx_errors, "tx_dropped": c.tx_dropped,
                }),
            )
        })
        .collect();
    Some(Value::Object(m))
}

/// One stats document: `now` (or the zero value of a container that is not running),
/// with `pre` as the previous reading (`None`: the first of a stream, or a one-shot).
pub fn document(
    id: &str,
    name: &str,
    now: Option<&Reading>,
    pre: Option<&Reading>,
    host_memory: u64,
) -> Value {
    let Some(r) = now else {
        return json!({
            "read": docker_time(None),
            "preread": docker_time(None),
            "pids_stats": {},
            "blkio_stats": blkio_stats(None),
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu_stats(None),
            "precpu_stats": cpu_stats(None),
            "memory_stats": {},
            "name": name,
            "id": id,
        });
    };
    let mut v = json!({
        "read": docker_time(r.at),
        "preread": docker_time(pre.and_then(|p| p.at)),
        "pids_stats": pids_stats(r),
        "blkio_stats": blkio_stats(r.cgroup.blkio.as_ref()),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_stats(Some(r)),
        "precpu_stats": cpu_stats(pre),
        "memory_stats": memory_stats(r, host_memory),
        "name": name,
        "id": id,
    });
    if let Some(n) = networks(r) {
        v["networks"] = n;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::cgroup_live::{CpuSample, MemorySample};

    fn reading() -> Reading {
        Reading {
            at: Some(Utc::now()),
            cgroup: CgroupSample {
                v2: false,
                cpu: Some(CpuSample {
                    total: 52_845_877,
                    percpu: vec![13_681_986, 39_163_891],
                    kernel: 10_000_000,
                    user: 30_000_000,
                    ..CpuSample::default()
                }),
                memory: Some(MemorySample {
                    usage: 331_776,
                    max_usage: Some(3_813_376),
                    failcnt: 0,
                    limit: 9_223_372_036_854_771_712,
                    stat: vec![("cache".into(), 0), ("total_inactive_file".into(), 0)],
                }),
                pids: Some((1, None)),
                blkio: Some(BlkioSample::V1(Vec::new())),
            },
            system_cpu_usage: 1_474_400_000_000,
            online_cpus: 2,
            networks: vec![(
                "eth0".into(),
                NetCounters {
                    rx_bytes: 896,
                    ..NetCounters::default()
                },
            )],
        }
    }

    #[test]
    fn a_v1_document_has_dockerds_keys() {
        let r = reading();
        let d = document("abc", "/t1", Some(&r), Some(&r), 25_276_514_304);
        assert_eq!(d["cpu_stats"]["cpu_usage"]["total_usage"], 52_845_877);
        assert_eq!(d["cpu_stats"]["cpu_usage"]["percpu_usage"][1], 39_163_891);
        assert_eq!(d["cpu_stats"]["online_cpus"], 2);
        assert_eq!(d["precpu_stats"]["system_cpu_usage"], 1_474_400_000_000u64);
        assert_eq!(d["memory_stats"]["limit"], 25_276_514_304u64);
        assert_eq!(d["memory_stats"]["max_usage"], 3_813_376);
        assert_eq!(d["memory_stats"]["stats"]["cache"], 0);
        assert!(d["memory_stats"].get("failcnt").is_none());
        assert_eq!(d["pids_stats"], json!({"current": 1}));
        assert_eq!(d["blkio_stats"]["io_service_bytes_recursive"], json!([]));
        assert_eq!(d["networks"]["eth0"]["rx_bytes"], 896);
        assert_eq!(d["name"], "/t1");
    }

    #[test]
    fn the_first_of_a_stream_and_a_stopped_container() {
        let r = reading();
        let d = document("abc", "/t1", Some(&r), None, 0);
        assert_eq!(d["preread"], "0001-01-01T00:00:00Z");
        assert_eq!(d["precpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert!(d["precpu_stats"].get("system_cpu_usage").is_none());
        let stopped = document("abc", "/t1", None, None, 0);
        assert_eq!(stopped["read"], "0001-01-01T00:00:00Z");
        assert_eq!(stopped["memory_stats"], json!({}));
        assert_eq!(
            stopped["blkio_stats"]["io_service_bytes_recursive"],
            Value::Null
        );
    }
}
