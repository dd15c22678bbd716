//! What a query can end in besides rows: one enum, each variant with a
//! stable code for the script's error object and a message that says what
//! to change.

use std::time::Duration;

/// Why a query gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The statement is not one read-only query (or does not parse).
    #[error("statement refused: {reason}")]
    StatementRefused { reason: String },
    /// The parameters do not fit the statement's placeholders.
    #[error("invalid params: {reason}")]
    InvalidParams { reason: String },
    /// The query returned more rows than allowed.
    #[error("the query returned more than {max_rows} rows; add a LIMIT or narrow the WHERE clause")]
    RowLimitExceeded { max_rows: usize },
    /// The rows, as JSON, are larger than allowed.
    #[error("the result is larger than {max_bytes} bytes as JSON; select fewer columns or rows")]
    ResultTooLarge { max_bytes: usize },
    /// The query ran longer than allowed.
    #[error("the query ran longer than {} ms", timeout.as_millis())]
    Timeout { timeout: Duration },
    /// The data source could not be opened or connected to.
    #[error("data source unavailable: {reason}")]
    SourceUnavailable { reason: String },
    /// The database refused or failed the query; its own message.
    #[error("query failed: {message}")]
    QueryFailed { message: String },
}

impl QueryError {
    /// The stable code: `statement_refused`, `invalid_params`,
    /// `row_limit_exceeded`, `result_too_large`, `timeout`,
    /// `source_unavailable` or `query_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::StatementRefused { .. } => "statement_refused",
            QueryError::InvalidParams { .. } => "invalid_params",
            QueryError::RowLimitExceeded { .. } => "row_limit_exceeded",
            QueryError::ResultTooLarge { .. } => "result_too_large",
            QueryError::Timeout { .. } => "timeout",
            QueryError::SourceUnavailable { .. } => "source_unavailable",
            QueryError::QueryFailed { .. } => "query_failed",
        }
    }

    pub(crate) fn refused(reason: impl Into<String>) -> QueryError {
        QueryError::StatementRefused {
            reason: reason.into(),
        }
    }

    pub(crate) fn params(reason: impl Into<String>) -> QueryError {
        QueryError::InvalidParams {
            reason: reason.into(),
        }
    }

    pub(crate) fn unavailable(reason: impl Into<String>) -> QueryError {
        QueryError::SourceUnavailable {
            reason: reason.into(),
        }
    }

    pub(crate) fn failed(message: impl Into<String>) -> QueryError {
        QueryError::QueryFailed {
            message: message.into(),
        }
    }
}
