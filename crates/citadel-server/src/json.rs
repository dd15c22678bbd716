//! A JSON body extractor whose rejections are our typed errors: malformed
//! JSON and wrong or unknown fields are 400 `invalid` naming the field and
//! the reason (`details.field`), a missing content type 415, an oversize
//! body 413, a body that does not arrive in time 408.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(&e, e.status()))?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value: T = serde_path_to_error::deserialize(&mut de).map_err(field_error)?;
        de.end().map_err(|e| syntax_error(&e))?;
        Ok(ApiJson(value))
    }
}

/// `application/json`, or any `application/…+json`.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// A body that could not be read: too large, too slow, or broken off.
pub(crate) fn body_error(e: &(dyn std::error::Error + 'static), status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is too large",
        );
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<crate::edge::BodyTimedOut>() {
            return ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", err.to_string());
        }
        source = err.source();
    }
    ApiError::invalid("the request body could not be read")
}

/// `name: missing field`, `input: invalid type: …`, with `details.field`.
fn field_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner();
    if !inner.is_data() {
        return syntax_error(inner);
    }
    let path = e.path().to_string();
    let message = without_position(&inner.to_string());
    // Missing and unknown fields are reported at the object that lacks or
    // has them; name the field itself.
    let quoted = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("missing field") || message.starts_with("unknown field"));
    let (field, reason) = match quoted {
        Some(name) => {
            // serde_path_to_error's path already ends at an unknown field,
            // but stops at the object that misses one.
            let field = if path == "." {
                name.to_owned()
            } else if message.starts_with("unknown field") {
                path.clone()
            } else {
                format!("{path}.{name}")
            };
            let reason = if message.starts_with("missing field") {
                "missing field".to_owned()
            } else {
                message
                    .split_once(", ")
                    .map_or("unknown field".to_owned(), |(_, expected)| {
                        format!("unknown field, {expected}")
                    })
            };
            (field, reason)
        }
        None if path == "." => (String::new(), message),
        None => (path, message),
    };
    let text = if field.is_empty() {
        reason
    } else {
        format!("{field}: {reason}")
    };
    ApiError::invalid(text).with_details(json!({ "field": field }))
}

fn syntax_error(e: &serde_json::Error) -> ApiError {
    let reason = without_position(&e.to_string());
    ApiError::invalid(format!(
        "the body is not valid JSON: {reason} at line {} column {}",
        e.line(),
        e.column()
    ))
    .with_details(json!({ "line": e.line(), "column": e.column() }))
}

/// serde_json ends its messages with ` at line L column C`; the position
/// is given separately (or means nothing for a field's type).
fn without_position(message: &str) -> String {
    match message.rsplit_once(" at line ") {
        Some((head, _)) => head.to_owned(),
        None => message.to_owned(),
    }
}

impl From<QueryRejection> for ApiError {
    /// `limit: invalid digit found in string`, with `details.field`.
    fn from(e: QueryRejection) -> Self {
        let text = e.body_text();
        let text = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text);
        match text.split_once(": ") {
            Some((field, reason)) if !field.contains(' ') => {
                ApiError::invalid(format!("query parameter {field}: {reason}"))
                    .with_details(json!({ "field": field }))
            }
            _ => ApiError::invalid(format!("query string: {text}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        input: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn error(text: &str) -> ApiError {
        let mut de = serde_json::Deserializer::from_str(text);
        match serde_path_to_error::deserialize::<_, Body>(&mut de) {
            Err(e) => field_error(e),
            Ok(_) => syntax_error(&de.end().unwrap_err()),
        }
    }

    #[test]
    fn errors_name_the_field_and_the_reason() {
        let cases = [
            (r#"{}"#, "name: missing field", "name"),
            (
                r#"{"name": 5}"#,
                "name: invalid type: integer `5`, expected a string",
                "name",
            ),
            (
                r#"{"name": "x", "input": {}}"#,
                "input.count: missing field",
                "input.count",
            ),
            (
                r#"{"name": "x", "input": {"count": "many"}}"#,
                "input.count: invalid type: string \"many\", expected u32",
                "input.count",
            ),
            (
                r#"{"name": "x", "admin": true}"#,
                "admin: unknown field, expected `name` or `input`",
                "admin",
            ),
        ];
        for (body, message, field) in cases {
            let e = error(body);
            assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "invalid"));
            assert_eq!(e.message, message, "{body}");
            assert_eq!(e.details.unwrap()["field"], field, "{body}");
        }
        let e = error("{not json");
        assert_eq!(
            e.message,
            "the body is not valid JSON: key must be a string at line 1 column 2"
        );
        let e = error(r#"{"name": "x"} trailing"#);
        assert_eq!(
            e.message,
            "the body is not valid JSON: trailing characters at line 1 column 15"
        );
    }
}
