//! `GET /events` (`docker events`): the past events `since`/`until` select, then the live
//! ones until `until` or until the client goes, as dockerd's `getEvents`
//! (`api/server/router/system/system_routes.go`). See [`crate::events`].

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use bytes::Bytes;
use futures_util::stream;
use tokio::sync::broadcast;

use super::logs::parse_timestamp;
use super::{ApiError, QueryParams};
use crate::events::{Event, EventFilter, events};
use crate::model::filters::Filters;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(get_events));
}

fn nanos(q: &QueryParams, key: &str) -> Result<Option<i64>, ApiError> {
    match q.non_empty(key) {
        None => Ok(None),
        Some(v) => Ok(Some(i64::try_from(parse_timestamp(v)?).unwrap_or(i64::MAX))),
    }
}

struct Live {
    rx: broadcast::Receiver<Arc<Event>>,
    filter: EventFilter,
    /// When `until` is in the future: the stream ends then.
    deadline: Option<tokio::time::Instant>,
}

impl Live {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            let ev = match self.deadline {
                Some(d) => tokio::select! {
                    r = self.rx.recv() => r,
                    () = tokio::time::sleep_until(d) => return None,
                },
                None => self.rx.recv().await,
            };
            match ev {
                Ok(ev) if self.filter.includes(&ev) => return Some(ev.to_line()),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "an events subscriber fell behind");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

async fn get_events(q: QueryParams) -> Result<HttpResponse, ApiError> {
    let since = nanos(&q, "since")?;
    let until = nanos(&q, "until")?;
    if let (Some(s), Some(u)) = (since, until)
        && u < s
    {
        return Err(ApiError::bad_request(format!(
            "`since` time ({}) cannot be after `until` time ({})",
            q.get("since").unwrap_or(""),
            q.get("until").unwrap_or("")
        )));
    }
    let filter = EventFilter::compile(Filters::parse(q.get("filters"))?)?;
    let (past, rx) = events().subscribe(since, until, &filter);
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    // An `until` already past: the replay alone, as dockerd's `onlyPastEvents`.
    let live = match until {
        Some(u) if u < now => None,
        Some(u) => {
            let wait = Duration::from_nanos(u64::try_from(u - now).unwrap_or(0));
            Some(Live {
                rx,
                filter,
                deadline: Some(tokio::time::Instant::now() + wait),
            })
        }
        None => Some(Live {
            rx,
            filter,
            deadline: None,
        }),
    };
    let replay = stream::iter(
        past.into_iter()
            .map(|e| Ok::<_, actix_web::Error>(e.to_line())),
    );
    let live = stream::unfold(live, |live| async move {
        let mut live = live?;
        let line = live.next().await?;
        Some((Ok::<_, actix_web::Error>(line), Some(live)))
    });
    let body = futures_util::StreamExt::chain(replay, live);
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body))
}
