//! `ApiError`: every failure a handler returns, mapped to a status and `{"error": "..."}`.
//! Internal errors are logged with their cause and answered with "internal error" only.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vouch_api::ApiErrorBody;
use vouch_store::StoreError;

/// A request the verifier refuses or cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input (400).
    #[error("{0}")]
    BadRequest(String),
    /// No or wrong credentials (401): admin token, or agent certificate.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such host (404).
    #[error("{0}")]
    NotFound(String),
    /// Conflicts with the stored state (409).
    #[error("{0}")]
    Conflict(String),
    /// The body or a field is too large (413).
    #[error("{0}")]
    TooLarge(String),
    /// Too many requests from this source or on this route (429, with `Retry-After`).
    #[error("{message}")]
    TooManyRequests {
        /// What was limited.
        message: String,
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// The verifier cannot serve this now (503): its store is not answering. Nothing was
    /// changed and nothing is vouched for.
    #[error("{0}")]
    Unavailable(String),
    /// The request did not complete within the verifier's request deadline (408).
    #[error("request timed out")]
    RequestTimeout,
    /// Something on our side failed (500); the cause is logged, never sent.
    #[error("internal error")]
    Internal(String),
    /// The verifier is shutting down (503): a request still in flight when the database
    /// closed. Nothing was changed; the agent retries against the next instance.
    #[error("the verifier is shutting down; retry")]
    ShuttingDown,
}

impl ApiError {
    /// The HTTP status.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub(crate) fn internal(e: impl core::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let body = ApiErrorBody {
            error: self.to_string(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Self::TooManyRequests {
            retry_after_secs, ..
        } = &self
            && let Ok(v) = axum::http::HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => {
                Self::Conflict("the host changed concurrently; retry".to_owned())
            }
            StoreError::Duplicate(what) => Self::Conflict(format!("{what} already exists")),
            closed if closed.is_closed() => Self::ShuttingDown,
            other => Self::internal(other),
        }
    }
}

impl From<vouch_model::TransitionError> for ApiError {
    fn from(e: vouch_model::TransitionError) -> Self {
        Self::Conflict(format!("{e}; nothing was changed"))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let text = r.body_text();
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::TooLarge(format!("request body too large: {text}"))
            }
            _ => Self::BadRequest(text),
        }
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s (JSON bodies, 400/413).
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}
