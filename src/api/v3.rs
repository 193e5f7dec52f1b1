//! The v3 (Cloud 66-style) wire types: the `{"response": …}` envelopes, stack, job and action
//! objects, and the error body. Fields are in alphabetical order (as the server has always
//! sent them).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::domain::ChainAfter;

/// `{"response": …}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Envelope<V> {
    pub response: V,
}

/// `{"response": [...], "count", "pagination": {previous, next, current, per_page, count, pages}}`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ListEnvelope<V> {
    pub count: i64,
    pub pagination: Pagination,
    pub response: Vec<V>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Pagination {
    pub count: i64,
    pub current: i64,
    pub next: Option<i64>,
    pub pages: i64,
    pub per_page: i64,
    pub previous: Option<i64>,
}

/// Cloud 66's stack object: the fields its clients read, with cronstack's `id` and `command`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = C66Stack)]
pub struct StackView {
    /// `null` for a pipeline (its commands are in its blocks).
    pub command: Option<String>,
    /// `2023-10-24 15:38:29 UTC`.
    pub created_at: String,
    /// `2023-10-24T15:38:29Z`.
    pub created_at_iso: String,
    /// The stack's environment (`production` unless set).
    pub environment: String,
    /// 3 every job's last run succeeded, 2 some failed, 4 all failed, 0 none ran yet.
    pub health: i64,
    pub id: i64,
    /// `2014-08-14T01:46:53+00:00`.
    pub last_activity: Option<String>,
    pub last_activity_iso: Option<String>,
    pub name: String,
    /// 1 (deployed) for every stack.
    pub status: i64,
    pub uid: String,
    pub updated_at: String,
    pub updated_at_iso: String,
}

/// Exactly Cloud 66's job fields.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = C66Job)]
pub struct JobView {
    pub created_at: String,
    pub cron: Option<String>,
    pub id: i64,
    pub name: String,
    pub params: JobParams,
    pub paused: bool,
    /// 0 updated, 1 started, 2 success, 3 failed.
    pub status: i64,
    /// `DockerHostTaskJob` for every command job.
    #[serde(rename = "type")]
    pub kind: String,
    pub uid: String,
    pub updated_at: String,
}

/// `command` for a one-command stack (or a job's own command); a pipeline's block types in
/// order as `steps`; a chained job's upstream jobs as `after` (with `after_any` when set).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = C66JobParams)]
pub struct JobParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    pub after: Vec<ChainAfter>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_any: bool,
}

/// An action record (run_now, pause, unpause, pause_all, unpause_all).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = C66Action)]
pub struct ActionView {
    pub action: String,
    /// ISO-8601 (`2016-02-04T12:52:24Z`).
    pub finished_at: Option<String>,
    pub finished_message: Option<String>,
    pub finished_result: Option<Value>,
    pub finished_success: Option<bool>,
    pub id: i64,
    pub metadata: Map<String, Value>,
    pub resource_id: String,
    /// `stack`.
    pub resource_type: String,
    pub started_at: String,
    pub started_via: String,
    /// The caller's email, or their user name.
    pub user: String,
}

/// `POST …/run_now`'s body (JSON or form); `job_args` may also come in the query string.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = C66RunNow)]
pub struct RunNowBody {
    /// The arguments, split like a shell splits words; `null`: none (as Ruby clients send a `nil`).
    pub job_args: Option<String>,
}

/// Every v3 error: `{error, error_description}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Cloud66Error)]
pub struct ErrorBody {
    /// The error id, by HTTP status (the table `ERROR_IDS` in the Cloud 66 handlers).
    #[schema(schema_with = error_ids)]
    pub error: String,
    /// What went wrong, for a person.
    pub error_description: String,
}

/// Cloud 66's error ids by the HTTP statuses that answer them; any other status is
/// [`OTHER_ERROR`]. The v3 dialect renders its errors with this table and the OpenAPI
/// document lists the same ids.
pub const ERROR_IDS: [(&[u16], &str); 10] = [
    (&[400, 413, 415], "bad_request"),
    (&[401], "unauthenticated"),
    (&[403], "forbidden"),
    (&[404], "not_found"),
    (&[405], "method_not_allowed"),
    (&[408], "request_timeout"),
    (&[409], "conflict"),
    (&[429], "throttled"),
    (&[503], "unavailable"),
    (&[507], "insufficient_storage"),
];
pub const OTHER_ERROR: &str = "internal_server_error";

/// The error id answered with an HTTP `status`.
pub fn error_id(status: u16) -> &'static str {
    ERROR_IDS.iter().find(|(statuses, _)| statuses.contains(&status)).map_or(OTHER_ERROR, |(_, id)| id)
}

/// `error`'s schema: one of the ids of [`ERROR_IDS`] or [`OTHER_ERROR`].
fn error_ids() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ERROR_IDS.iter().map(|(_, id)| *id).chain([OTHER_ERROR])))
        .build()
}
