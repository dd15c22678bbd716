//! The one error of the use cases: a stable code, a message for people,
//! optional particulars, and how long to wait before retrying. The HTTP
//! edge maps the code to a status, the CLI to an exit code; neither adds
//! meaning of its own.

use citadel_domain::Permission;
use citadel_store::StoreError;
use serde_json::{Value, json};

/// What went wrong, as clients see it: each code's string is part of the
/// API's contract (`{"error": {"code": …}}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or breaks a rule (a bad name, a limit out
    /// of range, an unknown role).
    Invalid,
    /// No valid credentials (or failed login).
    Unauthorized,
    /// The caller lacks a permission (named in the details).
    Forbidden,
    /// A person reviewing their own version.
    OwnVersion,
    /// The tenant has no such thing (also for another tenant's ids).
    NotFound,
    /// It already exists, or a concurrent change won.
    Conflict,
    /// A version or job is not in a state the action applies to.
    InvalidState,
    /// The script has no live version to run.
    NoLiveVersion,
    /// Only an approved version can go live.
    NotApproved,
    /// The run already finished.
    AlreadyFinished,
    /// A source or body over its size limit.
    TooLarge,
    /// Static analysis refused the script (diagnostics in the details).
    Rejected,
    /// A kill switch covers it.
    Killed,
    /// Too many requests (failed authentications, runs per minute).
    RateLimited,
    /// A tenant's store is full (its key-value quota).
    QuotaExceeded,
    /// A compare-and-set found another version (the current one is in the
    /// details).
    VersionMismatch,
    /// Too many runs in flight for the tenant or script.
    ConcurrencyLimit,
    /// Too many run event streams open for the tenant.
    TooManyStreams,
    /// The route exists, not with this method.
    MethodNotAllowed,
    /// A plugin's route handler threw, or answered something that is not
    /// a response (the run's id in the details, never a stack trace).
    HandlerFailed,
    /// A plugin's route handler did not answer within its timeout.
    HandlerTimeout,
    /// The database or the sandbox cannot serve just now; retry.
    Unavailable,
    /// A bug or an unexpected failure; details went to the log only.
    Internal,
}

impl ErrorCode {
    /// The code's string in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Invalid => "invalid",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::OwnVersion => "own_version",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::NoLiveVersion => "no_live_version",
            ErrorCode::NotApproved => "not_approved",
            ErrorCode::AlreadyFinished => "already_finished",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Rejected => "rejected",
            ErrorCode::Killed => "killed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::ConcurrencyLimit => "concurrency_limit",
            ErrorCode::TooManyStreams => "too_many_streams",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::HandlerFailed => "handler_failed",
            ErrorCode::HandlerTimeout => "handler_timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A use case's failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// Particulars (the missing permission, the field at fault, the
    /// diagnostics); `None` when there are none.
    pub details: Option<Value>,
    /// Seconds to wait before retrying (rate limits, unavailability).
    pub retry_after: Option<u64>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// 403 naming the missing permission.
    pub fn forbidden(permission: Permission) -> Self {
        Self::new(
            ErrorCode::Forbidden,
            format!("missing permission `{permission}`"),
        )
        .with_details(json!({ "permission": permission.as_str() }))
    }

    /// A denial that is not about a permission (what is refused, and why,
    /// in the details).
    pub fn forbidden_with(message: impl Into<String>, details: Value) -> Self {
        Self::new(ErrorCode::Forbidden, message).with_details(details)
    }

    /// A denial for a principal that holds `permission`, but only in
    /// `scopes` (folders), none of which covers `path` (`None`: the request
    /// needs it across the tenant). The message names the scopes, so the
    /// caller knows it is the token's folder that is the matter.
    pub fn forbidden_outside(permission: Permission, path: Option<&str>, scopes: &[&str]) -> Self {
        let place = match path {
            Some(p) => format!("on `{p}`"),
            None => "across the tenant".to_owned(),
        };
        Self::new(
            ErrorCode::Forbidden,
            format!(
                "missing permission `{permission}` {place}: this token may only act on scripts under {}",
                scope_list(scopes)
            ),
        )
        .with_details(json!({ "permission": permission.as_str(), "path": path, "scopes": scopes }))
    }

    /// The database cannot be reached just now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// An unexpected failure: the cause goes to the log, the caller gets a
    /// generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// The permission a `forbidden` error names, if any.
    pub fn missing_permission(&self) -> Option<&str> {
        (self.code == ErrorCode::Forbidden)
            .then(|| self.details.as_ref()?.get("permission")?.as_str())
            .flatten()
    }
}

/// `billing/`, or `billing/` or `hr/`.
pub(crate) fn scope_list(scopes: &[&str]) -> String {
    scopes
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => AppError::conflict(format!("{what} already exists")),
            StoreError::NotFound(what) => AppError::not_found(format!("{what} not found")),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "the database is unavailable");
                AppError::unavailable("the database cannot be reached just now; retry")
                    .with_retry_after(1)
            }
            other => AppError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_api_strings() {
        let all = [
            (ErrorCode::Invalid, "invalid"),
            (ErrorCode::Unauthorized, "unauthorized"),
            (ErrorCode::Forbidden, "forbidden"),
            (ErrorCode::OwnVersion, "own_version"),
            (ErrorCode::NotFound, "not_found"),
            (ErrorCode::Conflict, "conflict"),
            (ErrorCode::InvalidState, "invalid_state"),
            (ErrorCode::NoLiveVersion, "no_live_version"),
            (ErrorCode::NotApproved, "not_approved"),
            (ErrorCode::AlreadyFinished, "already_finished"),
            (ErrorCode::TooLarge, "too_large"),
            (ErrorCode::Rejected, "rejected"),
            (ErrorCode::Killed, "killed"),
            (ErrorCode::RateLimited, "rate_limited"),
            (ErrorCode::QuotaExceeded, "quota_exceeded"),
            (ErrorCode::VersionMismatch, "version_mismatch"),
            (ErrorCode::ConcurrencyLimit, "concurrency_limit"),
            (ErrorCode::TooManyStreams, "too_many_streams"),
            (ErrorCode::Unavailable, "unavailable"),
            (ErrorCode::Internal, "internal"),
        ];
        for (code, text) in all {
            assert_eq!(code.as_str(), text);
            assert_eq!(code.to_string(), text);
        }
    }

    #[test]
    fn store_errors_keep_their_meaning() {
        let e = AppError::from(StoreError::Conflict("tenant `acme`".into()));
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::Conflict, "tenant `acme` already exists")
        );
        let e = AppError::from(StoreError::NotFound("token `t`".into()));
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::NotFound, "token `t` not found")
        );
    }

    #[test]
    fn a_scoped_denial_names_its_scopes() {
        let e = AppError::forbidden_outside(
            Permission::ScriptRun,
            Some("hr/pay"),
            &["billing/", "ops/"],
        );
        assert_eq!(
            e.message,
            "missing permission `script.run` on `hr/pay`: this token may only act on scripts under `billing/` or `ops/`"
        );
        assert_eq!(e.missing_permission(), Some("script.run"));
        assert_eq!(AppError::invalid("x").missing_permission(), None);
    }
}
