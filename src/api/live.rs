//! The routes that act on a running container's cgroup: pause, unpause, top and stats
//! (`sys::cgroup_live` does the cgroup's part; the store checks and records the state).

use std::process::Command;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use chrono::Utc;
use serde_json::{Value, json};

use super::stats::{Reading, document};
use super::{ApiError, AppState, QueryParams, json_reply};
use crate::actors::store::state::Status;
use crate::actors::store::{
    GetLiveTarget, LiveTarget, PauseContainer, StoreError, UnpauseContainer, UpdateContainer,
};
use crate::error::ErrorKind;
use crate::sys::cgroup_live::{self, LiveCgroup};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/{id}/pause", web::post().to(pause))
        .route("/containers/{id}/unpause", web::post().to(unpause))
        .route("/containers/{id}/top", web::get().to(top))
        .route("/containers/{id}/stats", web::get().to(stats))
        .route("/containers/{id}/update", web::post().to(update));
}

fn id_of(req: &HttpRequest) -> String {
    req.match_info().query("id").to_owned()
}

async fn pause(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let id = id_of(&req);
    state.actors.store.send(PauseContainer { id }).await??;
    Ok(HttpResponse::NoContent().finish())
}

async fn unpause(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let id = id_of(&req);
    state.actors.store.send(UnpauseContainer { id }).await??;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /containers/{id}/top?ps_args=`: `ps` (with `ps_args`, `-ef` by default) limited
/// to the processes of the container's cgroup, as dockerd runs it.
async fn top(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let ps_args = query.non_empty("ps_args").unwrap_or("-ef").to_owned();
    validate_ps_args(&ps_args).map_err(ApiError::bad_request)?;
    let t = state
        .actors
        .store
        .send(GetLiveTarget { id: id_of(&req) })
        .await??;
    match t.status {
        Status::Running | Status::Paused => {}
        Status::Restarting => return Err(StoreError::Restarting { id: t.id }.into()),
        _ => return Err(StoreError::KillNotRunning { id: t.id }.into()),
    }
    let id = t.id.clone();
    let out = tokio::task::spawn_blocking(move || run_top(&t.cgroup, &ps_args))
        .await
        .map_err(|e| ApiError::new(ErrorKind::System, e.to_string()))?;
    let (titles, processes) = match out {
        Ok(v) => v,
        Err(TopError::Gone) => return Err(StoreError::KillNotRunning { id }.into()),
        Err(TopError::Failed(m)) => return Err(ApiError::new(ErrorKind::System, m)),
    };
    Ok(json_reply(
        StatusCode::OK,
        &json!({"Titles": titles, "Processes": processes}),
    ))
}

enum TopError {
    /// The container exited meanwhile.
    Gone,
    Failed(String),
}

/// dockerd's check of `ps_args`: a column renamed to look like `PID` would hide the
/// real one (`-o user=PID`), unless it is the pid column itself.
pub fn validate_ps_args(args: &str) -> Result<(), String> {
    let bytes = args.as_bytes();
    for (i, _) in args.match_indices('=') {
        // The key: the run of non-space characters before '=', itself after a space.
        let start = args[..i]
            .rfind(|c: char| c.is_ascii_whitespace())
            .map_or(0, |p| p + 1);
        if start == 0 {
            continue;
        }
        let key = &args[start..i];
        let rest = args[i + 1..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let value: String = rest
            .chars()
            .take_while(|c| !c.is_ascii_whitespace())
            .collect();
        if value.starts_with("PID") && key != "pid" && bytes[start - 1].is_ascii_whitespace() {
            return Err(format!("specifying \"{key}={value}\" is not allowed"));
        }
    }
    Ok(())
}

type TopRows = (Vec<String>, Vec<Vec<String>>);

fn run_top(cg: &LiveCgroup, ps_args: &str) -> Result<TopRows, TopError> {
    let pids = cg.pids().map_err(|e| {
        if cgroup_live::is_gone(&e) {
            TopError::Gone
        } else {
            TopError::Failed(format!("{e}"))
        }
    })?;
    let args: Vec<&str> = ps_args.split(' ').collect();
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let with_pids = Command::new("ps")
        .args(&args)
        .arg(format!("-q{}", list.join(",")))
        .output();
    let output = match with_pids {
        Ok(o) if o.status.success() => o,
        // Some options (`f`) do not go with -q: again without it, as dockerd does.
        _ => {
            let o = Command::new("ps")
                .args(&args)
                .output()
                .map_err(|e| TopError::Failed(format!("ps: {e}")))?;
            if !o.status.success() {
                let err = String::from_utf8_lossy(&o.stderr);
                let line = err.lines().next().unwrap_or("").trim();
                let why = if line.is_empty() {
                    format!("exit status {}", o.status.code().unwrap_or(-1))
                } else {
                    line.to_owned()
                };
                return Err(TopError::Failed(format!("ps: {why}")));
            }
            o
        }
    };
    parse_ps_output(&String::from_utf8_lossy(&output.stdout), &pids).map_err(TopError::Failed)
}

/// The rows of a `ps` output whose PID is one of `pids` (and the thread rows, PID `-`,
/// that follow one of them), the last column keeping its spaces, as dockerd parses it.
pub fn parse_ps_output(output: &str, pids: &[u32]) -> Result<TopRows, String> {
    let mut lines = output.split('\n');
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    let pid_index = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| "Couldn't find PID field in ps output".to_owned())?;
    let mut processes = Vec::new();
    let mut after_ours = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(field) = fields.get(pid_index) else {
            continue;
        };
        let ours = if *field == "-" {
            after_ours
        } else {
            let p: u32 = field
                .parse()
                .map_err(|e| format!("Unexpected pid '{field}': {e}"))?;
            after_ours = pids.contains(&p);
            after_ours
        };
        if ours {
            let n = titles.len().max(1) - 1;
            let mut row: Vec<String> = fields.iter().take(n).map(|s| (*s).to_owned()).collect();
            row.push(fields.get(n..).map(|r| r.join(" ")).unwrap_or_default());
            processes.push(row);
        }
    }
    Ok((titles, processes))
}

/// Reads the counters of a running container (off the async threads); `None` when it has
/// exited.
fn read_now(t: &LiveTarget) -> Result<Option<Reading>, String> {
    let cgroup = match t.cgroup.sample() {
        Ok(s) => s,
        Err(e) if cgroup_live::is_gone(&e) => return Ok(None),
        Err(e) => return Err(format!("{e}")),
    };
    let networks = if t.pid > 0 {
        cgroup_live::net_counters(t.pid).unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(Some(Reading {
        at: Some(Utc::now()),
        cgroup,
        system_cpu_usage: cgroup_live::system_cpu_usage().unwrap_or(0),
        online_cpus: cgroup_live::online_cpus(),
        networks,
    }))
}

async fn reading(t: &LiveTarget) -> Result<Option<Reading>, ApiError> {
    if !matches!(t.status, Status::Running | Status::Paused) {
        return Ok(None);
    }
    let t = t.clone();
    tokio::task::spawn_blocking(move || read_now(&t))
        .await
        .map_err(|e| ApiError::new(ErrorKind::System, e.to_string()))?
        .map_err(|m| ApiError::new(ErrorKind::System, m))
}

/// `GET /containers/{id}/stats`: `stream` (default true: one document a second) and
/// `one-shot` (with stream=false: at once, without the second reading that fills
/// `precpu_stats`).
async fn stats(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let stream = query.get("stream").is_none() || query.flag("stream");
    let one_shot = query.flag("one-shot");
    if stream && one_shot {
        return Err(ApiError::bad_request(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let t = state
        .actors
        .store
        .send(GetLiveTarget { id: id_of(&req) })
        .await??;
    let host_memory = state.facts.mem_total;
    let name = t.name.clone();
    if !stream {
        let mut now = reading(&t).await?;
        let mut pre = None;
        if now.is_some() && !one_shot {
            tokio::time::sleep(Duration::from_secs(1)).await;
            pre = now;
            now = reading(&t).await?;
            if now.is_none() {
                pre = None;
            }
        }
        let doc = document(&t.id, &name, now.as_ref(), pre.as_ref(), host_memory);
        return Ok(json_reply(StatusCode::OK, &doc));
    }
    let body = futures_util::stream::unfold(
        (t, None::<Reading>, true),
        move |(t, pre, first)| async move {
            if !first {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let now = match reading(&t).await {
                Ok(n) => n,
                Err(_) => return None,
            };
            if now.is_none() && matches!(t.status, Status::Running | Status::Paused) && !first {
                // It has exited: the stream ends.
                return None;
            }
            let doc: Value = document(&t.id, &t.name, now.as_ref(), pre.as_ref(), host_memory);
            let bytes = Bytes::from(format!("{doc}\n"));
            Some((Ok::<_, actix_web::Error>(bytes), (t, now, false)))
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body))
}

/// `POST /containers/{id}/update`: the fields of `store::update::HONOURED` applied; any
/// other field of Docker's `Resources` refused by name when set.
async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let doc: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    crate::actors::store::update::refuse(&doc)?;
    let upd: crate::model::api::HostConfig =
        serde_json::from_value(doc).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let warnings = state
        .actors
        .store
        .send(UpdateContainer {
            id: id_of(&req),
            update: upd,
        })
        .await??;
    // dockerd's reply has `null` when there is no warning.
    let warnings = if warnings.is_empty() {
        Value::Null
    } else {
        json!(warnings)
    };
    Ok(json_reply(StatusCode::OK, &json!({"Warnings": warnings})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_args_that_rename_a_column_pid_are_refused() {
        assert!(validate_ps_args("-ef").is_ok());
        assert!(validate_ps_args("-o pid,comm").is_ok());
        assert!(validate_ps_args("-o pid=PID").is_ok());
        assert_eq!(
            validate_ps_args("-o user=PID").unwrap_err(),
            "specifying \"user=PID\" is not allowed"
        );
    }

    #[test]
    fn ps_output_is_kept_to_the_containers_pids() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init splash\nroot 31608 31589 0 01:20 ? 00:00:00 sleep 100\n- - - 0 01:20 ? 00:00:00 -\nroot 31700 1 0 01:20 ? 00:00:00 bash\n";
        let (titles, rows) = parse_ps_output(out, &[31608]).unwrap();
        assert_eq!(titles.len(), 8);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1], "31608");
        assert_eq!(rows[0][7], "sleep 100");
        assert_eq!(rows[1][0], "-");
        assert!(parse_ps_output("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
