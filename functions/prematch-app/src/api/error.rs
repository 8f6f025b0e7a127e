//! One error type for the HTTP edge and its JSON body `{"error":{"code","message","fields"?}}`.

use std::time::Duration;

use lambda_http::http::header::{
    HeaderName, HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::Serialize;

/// One bad field of a request body. `message` says what is expected; it never repeats the value sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, as a JSON path: `run_date`, `regions`, `regions[2]`.
    pub field: String,
    /// Stable snake_case reason, for clients: `invalid_date`, `unknown_field`, ...
    pub code: &'static str,
    /// What a valid value looks like.
    pub message: String,
}

impl FieldError {
    /// A field error with its reason code and message.
    pub fn new(
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> FieldError {
        FieldError {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// Everything a handler can answer besides success. Each variant maps to one status and one code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 400: the body or a parameter is invalid; `fields` names each bad field.
    #[error("{message}")]
    BadRequest {
        /// A summary for humans.
        message: String,
        /// Each bad field (empty when the body as a whole is unusable).
        fields: Vec<FieldError>,
    },
    /// 401: no credentials were presented.
    #[error("authentication required: sign the request with IAM or send the admin key in x-api-key or Authorization: Bearer")]
    Unauthorized,
    /// 403: credentials were presented but are not valid.
    #[error("the credentials presented are not valid for this endpoint")]
    Forbidden,
    /// 404: no such route (a mis-routed gateway event).
    #[error("no such resource")]
    NotFound,
    /// 405: this function serves one method.
    #[error("method not allowed; use {allow}")]
    MethodNotAllowed {
        /// The one method the route accepts (the `Allow` header).
        allow: &'static str,
    },
    /// 409: the work asked for is already under way.
    #[error("{message}")]
    Conflict {
        /// What is already under way (ids only, never personal data).
        message: String,
    },
    /// 413: the body is larger than the limit.
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 415: the body is not `application/json`.
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    /// 429: the caller is over its rate limit.
    #[error("too many requests; retry after {} s", retry_after_secs(*.retry_after))]
    TooManyRequests {
        /// When a request would next be allowed (the `Retry-After` header, in whole seconds).
        retry_after: Duration,
    },
    /// 503: a dependency the request needs is unreachable; the client may retry.
    #[error("{dependency} is unavailable; retry later")]
    Unavailable {
        /// Which dependency (`redis`, `queue`, ...).
        dependency: &'static str,
    },
    /// 500: a bug on our side. Never used for bad input.
    #[error("internal error")]
    Internal,
}

/// Whole seconds for `Retry-After`, rounded up and at least 1 so a client never retries at once.
fn retry_after_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a [FieldError]>,
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable snake_case code in the body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "invalid_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict { .. } => "conflict",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal => "internal",
        }
    }

    /// The JSON response, with `Allow`, `Retry-After` or `WWW-Authenticate` where the status calls for it.
    pub fn to_response(&self) -> Response<Body> {
        let fields = match self {
            ApiError::BadRequest { fields, .. } if !fields.is_empty() => Some(fields.as_slice()),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                fields,
            },
        };
        let mut response = json_response(self.status(), &body);
        let headers = response.headers_mut();
        match self {
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::TooManyRequests { retry_after } => {
                headers.insert(
                    RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(*retry_after)),
                );
            }
            ApiError::Unavailable { .. } => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
            }
            ApiError::Unauthorized => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"prematch\""),
                );
            }
            _ => {}
        }
        response
    }
}

/// A JSON response that is never cached. Serialising our own types cannot fail; if it ever did, the
/// client still gets a well-formed 500 body rather than a panic.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    let (status, text) = match serde_json::to_string(body) {
        Ok(text) => (status, text),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"code":"internal","message":"internal error"}}"#.to_string(),
        ),
    };
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Adds a header whose value we computed; a value that is not a valid header is left out rather than
/// failing the response.
pub fn set_header(response: &mut Response<Body>, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[test]
    fn every_error_has_its_status_and_a_json_body_with_its_code() {
        let cases = [
            (
                ApiError::BadRequest {
                    message: "bad".into(),
                    fields: vec![],
                },
                400,
                "invalid_request",
            ),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::Forbidden, 403, "forbidden"),
            (ApiError::NotFound, 404, "not_found"),
            (
                ApiError::MethodNotAllowed { allow: "POST" },
                405,
                "method_not_allowed",
            ),
            (
                ApiError::Conflict {
                    message: "busy".into(),
                },
                409,
                "conflict",
            ),
            (
                ApiError::PayloadTooLarge { limit: 10 },
                413,
                "payload_too_large",
            ),
            (
                ApiError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (
                ApiError::TooManyRequests {
                    retry_after: Duration::from_millis(1500),
                },
                429,
                "rate_limited",
            ),
            (
                ApiError::Unavailable {
                    dependency: "redis",
                },
                503,
                "unavailable",
            ),
            (ApiError::Internal, 500, "internal"),
        ];
        for (error, status, code) in cases {
            // WHEN the error becomes a response
            let response = error.to_response();
            // THEN status, content type and code match, and there is a message
            assert_eq!(response.status().as_u16(), status, "{error:?}");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
            let body = body_json(&response);
            assert_eq!(body["error"]["code"], code);
            assert!(!body["error"]["message"].as_str().unwrap().is_empty());
            assert!(
                body["error"].get("fields").is_none(),
                "no fields unless a field is bad"
            );
        }
    }

    #[test]
    fn bad_request_lists_each_field() {
        let error = ApiError::BadRequest {
            message: "2 fields are invalid".into(),
            fields: vec![
                FieldError::new("run_date", "invalid_date", "a date YYYY-MM-DD"),
                FieldError::new("regions[1]", "invalid_region", "a region name"),
            ],
        };
        let body = body_json(&error.to_response());
        let fields = body["error"]["fields"].as_array().unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1]["field"], "regions[1]");
        assert_eq!(fields[1]["code"], "invalid_region");
    }

    #[test]
    fn rate_limited_answer_rounds_retry_after_up_to_whole_seconds() {
        let response = ApiError::TooManyRequests {
            retry_after: Duration::from_millis(1001),
        }
        .to_response();
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        let response = ApiError::TooManyRequests {
            retry_after: Duration::ZERO,
        }
        .to_response();
        assert_eq!(response.headers()[RETRY_AFTER], "1");
    }

    #[test]
    fn method_not_allowed_names_the_allowed_method() {
        let response = ApiError::MethodNotAllowed { allow: "GET" }.to_response();
        assert_eq!(response.headers()[ALLOW], "GET");
    }
}
