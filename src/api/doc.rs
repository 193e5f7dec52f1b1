//! Shapes the OpenAPI document describes that no handler deserializes or serializes as such:
//! the query strings read by hand, the answers still written as `json!` literals, and the v1
//! list pages (their items' key differs by endpoint). Beside the wire types so that handlers
//! and the document (`crate::http::openapi`) both import them from below.

#![allow(dead_code)]

use utoipa::{IntoParams, ToSchema};

use super::v1::{DeliveryView, JobView, Listed, MonitorView, PingView, RunView, ScheduleView, WebhookView};

// Query parameters of the handlers whose extractors read the query string by hand.

/// `?page=`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// 1-based page number (v1: 10 per page, v3: 30)
    page: Option<i64>,
}

/// A token hook's credential.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HookQuery {
    /// the stack's webhook_token, for a token hook (or send the X-Cronstack-Hook-Token header)
    token: Option<String>,
}

/// `GET /api/v1/overview`'s query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OverviewQueryParams {
    /// 1-based page number
    page: Option<i64>,
    /// rows per page, 1 to 200 (default 50)
    per_page: Option<i64>,
    /// only jobs whose name contains this text (any case)
    name: Option<String>,
    /// only the jobs of this stack (an id of the caller's)
    stack: Option<i64>,
}

/// `GET /api/3/stacks`'s query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StacksQuery {
    /// 1-based page number (30 per page)
    page: Option<i64>,
    /// only stacks whose name contains this text
    filter_name: Option<String>,
}

/// `GET /api/3/stacks/{stack}/jobs`'s query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// 1-based page number (30 per page)
    page: Option<i64>,
    /// accepted and ignored (every job runs on the cronstack cluster)
    server_uid: Option<String>,
}

/// `job_args` in the query string.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunNowQuery {
    /// the arguments, split like a shell splits words
    job_args: Option<String>,
}

// Small answers: the handlers send `KragleOk` and `HookToken` as these types; the others
// describe answers they write as `json!` literals. The rest of the wire model is
// `crate::api::v1` (its small answers re-exported here beside these).
pub use super::v1::{BlockTypeView as BlockType, Created, Deleted, JobDeleted, SessionView as LoginAnswer};

/// `{"code": 0}`.
#[derive(serde::Serialize, ToSchema)]
pub struct KragleOk {
    /// 0
    pub code: i64,
}

/// A hook's answer: `{status: 0, result}` or `{status: 1, err}` (HTTP 200 either way).
#[derive(ToSchema)]
#[schema(as = HookAnswer)]
pub struct HookReply {
    /// 0: the command succeeded; 1: it did not.
    status: i64,
    /// the command's stdout, parsed as JSON when it is JSON (status 0)
    result: Option<serde_json::Value>,
    /// what went wrong (status 1)
    err: Option<String>,
}

/// A stack run by hand: `{success: [run id], result}` or `{error}`.
#[derive(ToSchema)]
pub struct ExecAnswer {
    success: Option<Vec<i64>>,
    result: Option<serde_json::Value>,
    error: Option<String>,
}

/// `{"token": …}`: a stack's new webhook_token.
#[derive(serde::Serialize, ToSchema)]
pub struct HookToken {
    pub token: String,
}

/// `/healthz` and `/readyz`.
#[derive(ToSchema)]
pub struct Status {
    /// ok, ready or unavailable
    status: String,
    node: Option<String>,
    scheduler: Option<String>,
    error: Option<String>,
}

/// A v1 list page: `{count, page, pagesize, <items>}`.
macro_rules! v1_list {
    ($($name:ident { $key:ident: $item:ty }),+ $(,)?) => {$(
        #[doc = concat!("A v1 list page of `", stringify!($key), "`: `{count, page, pagesize, ", stringify!($key), "}`.")]
        #[derive(ToSchema)]
                pub struct $name {
            count: i64,
            page: i64,
            pagesize: i64,
            $key: Vec<$item>,
        }
    )+};
}

v1_list!(
    JobList { jobs: JobView },
    RunList { runs: RunView },
    ScheduleList { schedules: ScheduleView },
    StackList { stacks: Listed },
    WebhookList { webhooks: WebhookView },
    ChannelList { channels: WebhookView },
    DeliveryList { deliveries: DeliveryView },
    MonitorList { monitors: MonitorView },
    PingList { pings: PingView },
    TypeList { types: BlockType },
);
