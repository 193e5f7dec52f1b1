//! `GET /overview`: the dashboard's landing table (see `service::overview`) — the caller's
//! jobs, the ones needing attention first, each with its stack's name, its schedule in words
//! and the outcomes of its last runs; filtered by `name` and `stack`, `per_page` rows a page.

use axum::Json;
use axum::extract::{Extension, FromRequestParts, State};
use axum::http::request::Parts;

use super::{KResult, Kragle};
use crate::api::doc::OverviewQueryParams;
use crate::api::v1::{JobView, OverviewJobView, OverviewView, StackRef};
use crate::http::AppState;
use crate::http::error::{Failure, RequestError};
use crate::http::extract::query_map;
use crate::service::{Caller, OverviewQuery, OverviewRow, PageRequest};

impl From<OverviewRow> for OverviewJobView {
    fn from(r: OverviewRow) -> Self {
        let config = r.schedule.as_ref().map(|s| &s.config);
        OverviewJobView {
            job: JobView::from(&r.job),
            stack_name: r.stack.map(|s| s.name),
            schedule_description: config.map(|c| c.trigger().map(|t| t.describe()).unwrap_or_default()),
            timezone: match config {
                Some(crate::domain::ScheduleConfig::Cron { timezone, .. }) => Some(timezone.clone()),
                _ => None,
            },
            recent_outcomes: r.recent,
        }
    }
}

/// The query: `page`, `per_page` (default 50), `name`, `stack` (an id).
pub struct OverviewParams(OverviewQuery);

impl<S: Send + Sync> FromRequestParts<S> for OverviewParams {
    type Rejection = Failure<Kragle>;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let params = query_map(parts).map_err(Failure::new)?;
        let int = |key: &str, default: Option<i64>| -> Result<Option<i64>, Failure<Kragle>> {
            match params.get(key).map(|v| v.trim()) {
                None | Some("") => Ok(default),
                Some(raw) => raw.parse::<i64>().map(Some).map_err(|_| {
                    Failure::new(RequestError::BadParam(format!(
                        "{key} must be an integer, got {:?}",
                        raw.chars().take(40).collect::<String>()
                    )))
                }),
            }
        };
        let defaults = PageRequest::default();
        let page = PageRequest {
            page: int("page", Some(defaults.page))?.unwrap_or(defaults.page),
            per_page: int("per_page", Some(defaults.per_page))?.unwrap_or(defaults.per_page),
        };
        let name = params.get("name").map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        Ok(OverviewParams(OverviewQuery { name, stack_id: int("stack", None)?, page }))
    }
}

#[utoipa::path(get, path = "/overview", summary = "The dashboard's overview: the caller's jobs, failing, stuck and late ones first (then healthy, then paused; by name within each), each with its stack's name, its schedule in words and zone, and the outcomes of its last 20 runs; every stack of the caller for the filter", params(OverviewQueryParams), responses((status = 200, body = OverviewView)))]
pub async fn overview(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    OverviewParams(q): OverviewParams,
) -> KResult<Json<OverviewView>> {
    let page = q.page;
    let found = s.service.overview(&caller, q).await?;
    Ok(Json(OverviewView {
        count: found.total,
        page: page.page,
        pagesize: page.per_page,
        jobs: found.rows.into_iter().map(OverviewJobView::from).collect(),
        stacks: found.stacks.into_iter().map(|s| StackRef { id: s.id, name: s.name }).collect(),
    }))
}
