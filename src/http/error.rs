//! What can go wrong in a request, in one enum; each dialect renders it in its own shape
//! (Kragle's `{code, msg}`, Cloud 66's `{error, error_description}`) in one place.

use std::marker::PhantomData;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::service::ServiceError;

/// Problems with the request itself, found before the service is called.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON at all (Kragle code 2).
    #[error("the request body is not valid JSON: {0}")]
    BadJson(String),
    /// Valid JSON of the wrong shape: unknown field, wrong type, missing field (Kragle code 4).
    #[error("{0}")]
    BadPayload(String),
    /// A query-string or path parameter is malformed (Kragle code 1).
    #[error("{0}")]
    BadParam(String),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error("send the body as application/json (got {0})")]
    UnsupportedMediaType(String),
    #[error("rate limit of {limit} requests per hour exceeded; retry in {retry_after} s")]
    RateLimited { limit: u32, retry_after: u64 },
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("no such endpoint: {0}")]
    NoSuchEndpoint(String),
}

/// Any failure of an API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Service(ServiceError),
}

/// A service's `Throttled` answers as the request limiter's 429 does, in one shape.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Throttled { limit, retry_after } => {
                ApiError::Request(RequestError::RateLimited { limit, retry_after })
            }
            ServiceError::HookMethod(_) => ApiError::Request(RequestError::MethodNotAllowed(e.to_string())),
            e => ApiError::Service(e),
        }
    }
}

impl ApiError {
    /// The HTTP status, the same in both dialects.
    pub fn status(&self) -> StatusCode {
        use RequestError as R;
        use ServiceError as S;
        match self {
            ApiError::Request(r) => match r {
                R::BadJson(_) | R::BadPayload(_) | R::BadParam(_) => StatusCode::BAD_REQUEST,
                R::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                R::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
                R::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                R::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                R::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
                R::NoSuchEndpoint(_) => StatusCode::NOT_FOUND,
            },
            ApiError::Service(s) => match s {
                S::NotFound(_) | S::BadReference(_) => StatusCode::NOT_FOUND,
                S::Invalid { .. } | S::InvalidSchedule(_) => StatusCode::BAD_REQUEST,
                S::NameTaken(_) | S::ScheduleInUse | S::Conflict(_) => StatusCode::CONFLICT,
                S::BadLogin | S::Unauthenticated => StatusCode::UNAUTHORIZED,
                S::MissingScope(_) => StatusCode::FORBIDDEN,
                S::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                S::HookMethod(_) => StatusCode::METHOD_NOT_ALLOWED,
                S::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                S::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
                S::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The message a person reads; internal details are never sent (they are logged once,
    /// where the error becomes a response: [`Failure::into_response`]).
    pub fn message(&self) -> String {
        match self {
            ApiError::Service(ServiceError::Internal(_)) => {
                "internal error; the server log has the details".to_string()
            }
            ApiError::Service(ServiceError::Unavailable(_)) => {
                "the database is unavailable; try again shortly".to_string()
            }
            other => other.to_string(),
        }
    }

    /// Logs what the caller is not told: internal errors and an unavailable database.
    fn log(&self) {
        match self {
            ApiError::Service(ServiceError::Internal(e)) => tracing::error!(error = ?e, "internal error"),
            ApiError::Service(ServiceError::Unavailable(e)) => {
                tracing::warn!(error = %e, "service unavailable")
            }
            _ => {}
        }
    }

    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Request(RequestError::RateLimited { retry_after, .. }) => Some(*retry_after),
            ApiError::Service(ServiceError::Unavailable(_)) => Some(5),
            _ => None,
        }
    }
}

/// An API dialect: how it renders errors.
pub trait Dialect: Send + Sync + 'static {
    fn render(err: &ApiError) -> Response;
}

/// A failed request in dialect `D`; handlers return `Result<_, Failure<D>>`.
pub struct Failure<D>(pub ApiError, PhantomData<D>);

impl<D> Failure<D> {
    pub fn new(e: impl Into<ApiError>) -> Self {
        Failure(e.into(), PhantomData)
    }
}

impl<D> std::fmt::Debug for Failure<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A store error met outside the service (the rate limiter's shared windows) answers as the
/// service would answer it.
impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Service(e.into())
    }
}

impl<D> From<crate::store::StoreError> for Failure<D> {
    fn from(e: crate::store::StoreError) -> Self {
        Failure::new(e)
    }
}

impl<D> From<ServiceError> for Failure<D> {
    fn from(e: ServiceError) -> Self {
        Failure::new(e)
    }
}

impl<D> From<RequestError> for Failure<D> {
    fn from(e: RequestError) -> Self {
        Failure::new(e)
    }
}

impl<D: Dialect> IntoResponse for Failure<D> {
    fn into_response(self) -> Response {
        self.0.log();
        let mut response = D::render(&self.0);
        if let Some(secs) = self.0.retry_after() {
            response.headers_mut().insert("retry-after", secs.into());
        }
        response
    }
}
