//! The HTTP side of the client: one `Api` bound to a server and a token, speaking the v1
//! (Kragle) dialect, with server errors turned into one readable line.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::v1::{ErrorBody, JobView, Listed, RunView, ScheduleView, WhoamiView};

/// A failed request, already phrased for a person.
#[derive(Debug)]
pub enum ApiError {
    /// The server answered with an error: the HTTP status and its message (Kragle's `msg`,
    /// Cloud 66's `error_description`, or the start of a non-JSON body).
    Server { status: u16, code: Option<i64>, message: String },
    /// The server could not be reached or the connection broke.
    Transport(String),
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Server { status: 404, .. })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Server { status, code: Some(code), message } => {
                write!(f, "{message} (HTTP {status}, code {code})")
            }
            ApiError::Server { status, code: None, message } => write!(f, "{message} (HTTP {status})"),
            ApiError::Transport(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

/// Reads the one line worth showing from an error body.
fn server_error(status: u16, body: &str) -> ApiError {
    if let Ok(e) = serde_json::from_str::<ErrorBody>(body) {
        let text = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_string);
        let message = text(&e.msg).or_else(|| text(&e.error_description)).or_else(|| text(&e.error));
        if let Some(m) = message {
            return ApiError::Server { status, code: e.code.as_ref().and_then(Value::as_i64), message: m };
        }
    }
    let first = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let message =
        if first.is_empty() { reason(status).to_string() } else { first.chars().take(200).collect() };
    ApiError::Server { status, code: None, message }
}

fn reason(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("error")
}

/// The innermost cause of a transport error ("Connection refused (os error 111)"), which
/// says more than reqwest's "error sending request for url (…)".
fn transport(base: &str, e: &reqwest::Error) -> ApiError {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if e.is_timeout() { "timed out".to_string() } else { cause.to_string() };
    if e.is_connect() || e.is_timeout() {
        ApiError::Transport(format!("cannot reach the server at {base}: {what}"))
    } else {
        ApiError::Transport(format!("talking to {base}: {what}"))
    }
}

/// An answer read as the wire type it should be; one that is not is the server's fault.
fn typed<T: DeserializeOwned>(v: Value) -> ApiResult<T> {
    serde_json::from_value(v).map_err(|e| ApiError::Server {
        status: 200,
        code: None,
        message: format!("the server answered something unexpected: {e}"),
    })
}

/// A page of a v1 list: its count, and its items under a key that names them.
#[derive(serde::Deserialize)]
struct ListPage {
    count: i64,
    #[serde(flatten)]
    lists: std::collections::HashMap<String, Value>,
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    token: String,
    http: reqwest::Client,
}

/// Percent-encodes one path segment (a job or stack name).
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Api {
    pub fn new(base: &str, token: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("cronstack-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client builds");
        Api { base: base.trim_end_matches('/').to_string(), token: token.to_string(), http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> ApiResult<Value> {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(&self.token);
        req = req.timeout(Duration::from_secs(60));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| transport(&self.base, &e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| transport(&self.base, &e))?;
        if !(200..300).contains(&status) {
            return Err(server_error(status, &text));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|_| ApiError::Server {
            status,
            code: None,
            message: format!(
                "the server answered something that is not JSON: {}",
                text.chars().take(120).collect::<String>()
            ),
        })
    }

    /// A GET answered with one of the wire types (`crate::api::v1`).
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> ApiResult<T> {
        typed(self.send::<()>(reqwest::Method::GET, path, None).await?)
    }

    /// A POST answered with one of the wire types (`crate::api::v1`).
    pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> ApiResult<T> {
        typed(self.send(reqwest::Method::POST, path, Some(body)).await?)
    }

    pub async fn put<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> ApiResult<T> {
        typed(self.send(reqwest::Method::PUT, path, Some(body)).await?)
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> ApiResult<T> {
        typed(self.send::<()>(reqwest::Method::DELETE, path, None).await?)
    }

    /// Every item of a paged v1 list (`{count, pagesize, page, <key>: [...]}`), as the wire
    /// type it is (`crate::api::v1`).
    pub async fn all<T: DeserializeOwned>(&self, path: &str, key: &str) -> ApiResult<Vec<T>> {
        let mut items = Vec::new();
        for page in 1.. {
            let sep = if path.contains('?') { '&' } else { '?' };
            let mut answer: ListPage = self.get(&format!("{path}{sep}page={page}")).await?;
            let batch: Vec<T> = match answer.lists.remove(key) {
                Some(list) => typed(list)?,
                None => Vec::new(),
            };
            let done = batch.is_empty() || items.len() as i64 + batch.len() as i64 >= answer.count;
            items.extend(batch);
            if done || page > 10_000 {
                break;
            }
        }
        Ok(items)
    }

    /// A streaming GET (a followed log): the response, its status already checked.
    pub async fn stream(&self, path: &str) -> ApiResult<reqwest::Response> {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| transport(&self.base, &e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let text = resp.text().await.unwrap_or_default();
            return Err(server_error(status, &text));
        }
        Ok(resp)
    }

    pub fn transport_error(&self, e: &reqwest::Error) -> ApiError {
        transport(&self.base, e)
    }

    /// A job by id or, failing that, by name.
    pub async fn job(&self, key: &str) -> ApiResult<JobView> {
        self.by_id_or_name("/jobs", key, "job").await
    }

    /// A stack by id or, failing that, by name: the whole of it when it is the caller's, else
    /// its public view.
    pub async fn stack(&self, key: &str) -> ApiResult<Listed> {
        self.by_id_or_name("/blockstacks", key, "stack").await
    }

    async fn by_id_or_name<T: DeserializeOwned>(&self, base: &str, key: &str, what: &str) -> ApiResult<T> {
        if let Ok(id) = key.parse::<i64>() {
            match self.get(&format!("{base}/byid/{id}")).await {
                Err(e) if e.is_not_found() => {}
                other => return other,
            }
        }
        self.get(&format!("{base}/byname/{}", segment(key))).await.map_err(|e| match e {
            ApiError::Server { status: 404, code, .. } => ApiError::Server {
                status: 404,
                code,
                message: format!("no {what} with the id or name {key:?}"),
            },
            other => other,
        })
    }

    /// A schedule by id or name (names are looked up in the list: there is no byname).
    pub async fn schedule(&self, key: &str) -> ApiResult<ScheduleView> {
        if let Ok(id) = key.parse::<i64>() {
            match self.get(&format!("/schedules/byid/{id}")).await {
                Err(e) if e.is_not_found() => {}
                other => return other,
            }
        }
        let all: Vec<ScheduleView> = self.all("/schedules", "schedules").await?;
        let mut found = all.into_iter().filter(|s| s.name.as_deref() == Some(key));
        match (found.next(), found.next()) {
            (Some(s), None) => Ok(s),
            (Some(_), Some(_)) => Err(ApiError::Server {
                status: 409,
                code: None,
                message: format!("several schedules are named {key:?}: give the id"),
            }),
            (None, _) => Err(ApiError::Server {
                status: 404,
                code: Some(6),
                message: format!("no schedule with the id or name {key:?}"),
            }),
        }
    }

    /// `GET /whoami`: who the token stands for.
    pub async fn me(&self) -> ApiResult<WhoamiView> {
        self.get("/whoami").await
    }

    /// Runs a job now with these arguments (each a separate `$N`).
    pub async fn run_now(&self, job_id: i64, args: &[String]) -> ApiResult<RunView> {
        self.post(&format!("/jobs/byid/{job_id}/run"), &json!({ "args": args })).await
    }
}
