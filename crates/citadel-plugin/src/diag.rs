//! Located diagnostics: what is wrong, where, under a stable code.
//!
//! Codes are part of the interface: a CLI prints them, a server answers
//! them, tests assert them. A code never changes meaning; new problems get
//! new codes.

use std::fmt;

use serde::Serialize;

/// How bad a diagnostic is. Errors refuse the bundle; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, located as precisely as the input allows: a file inside
/// the bundle and, where the format gives them, a 1-based line and column
/// (columns count characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// One of [`codes`]; stable.
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    /// The file inside the bundle (or the archive entry) it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl Diagnostic {
    /// An error about the bundle as a whole or an unlocated file.
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            file: None,
            line: None,
            column: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn in_file(mut self, file: impl Into<String>) -> Diagnostic {
        self.file = Some(file.into());
        self
    }

    pub fn at(mut self, line: u32, column: u32) -> Diagnostic {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `file:line:column: error[code]: message`, the shape compilers print.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line, self.column) {
            (Some(file), Some(line), Some(column)) => write!(f, "{file}:{line}:{column}: ")?,
            (Some(file), _, _) => write!(f, "{file}: ")?,
            _ => {}
        }
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}[{}]: {}", self.code, self.message)
    }
}

/// Every code this crate reports.
pub mod codes {
    // Bundles: reading archives and directories.
    pub const BUNDLE_TOO_LARGE: &str = "bundle_too_large";
    pub const FILE_TOO_LARGE: &str = "file_too_large";
    pub const TOO_MANY_FILES: &str = "too_many_files";
    pub const ZIP_BOMB: &str = "zip_bomb";
    pub const PATH_TRAVERSAL: &str = "path_traversal";
    pub const ABSOLUTE_PATH: &str = "absolute_path";
    pub const INVALID_PATH: &str = "invalid_path";
    pub const NON_UTF8_NAME: &str = "non_utf8_name";
    pub const FORBIDDEN_ENTRY: &str = "forbidden_entry";
    pub const DUPLICATE_ENTRY: &str = "duplicate_entry";
    pub const CORRUPT_ARCHIVE: &str = "corrupt_archive";
    pub const UNSUPPORTED_COMPRESSION: &str = "unsupported_compression";
    pub const UNKNOWN_FORMAT: &str = "unknown_format";
    pub const IO_ERROR: &str = "io_error";
    pub const MISSING_MANIFEST: &str = "missing_manifest";
    pub const AMBIGUOUS_MANIFEST: &str = "ambiguous_manifest";

    // Manifest and webhook documents: shape.
    pub const MANIFEST_SYNTAX: &str = "manifest_syntax";
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    pub const MISSING_FIELD: &str = "missing_field";
    pub const INVALID_TYPE: &str = "invalid_type";
    pub const DUPLICATE_KEY: &str = "duplicate_key";
    pub const TOO_MANY_ENTRIES: &str = "too_many_entries";

    // Manifest: values.
    pub const INVALID_SLUG: &str = "invalid_slug";
    pub const INVALID_NAME: &str = "invalid_name";
    pub const INVALID_VERSION: &str = "invalid_version";
    pub const INVALID_DESCRIPTION: &str = "invalid_description";
    pub const INVALID_ENTRY: &str = "invalid_entry";
    pub const UNSUPPORTED_LANGUAGE: &str = "unsupported_language";
    pub const INVALID_PERMISSIONS: &str = "invalid_permissions";
    pub const INVALID_EVENT: &str = "invalid_event";
    pub const DUPLICATE_EVENT: &str = "duplicate_event";
    pub const INVALID_METHOD: &str = "invalid_method";
    pub const INVALID_ROUTE_PATH: &str = "invalid_route_path";
    pub const DUPLICATE_ROUTE: &str = "duplicate_route";
    pub const INVALID_AUTH: &str = "invalid_auth";
    pub const INVALID_PERMISSION: &str = "invalid_permission";
    pub const INVALID_JOB_NAME: &str = "invalid_job_name";
    pub const DUPLICATE_JOB: &str = "duplicate_job";
    pub const INVALID_CRON: &str = "invalid_cron";
    pub const INVALID_TIMEZONE: &str = "invalid_timezone";
    pub const INVALID_SECRET_NAME: &str = "invalid_secret_name";
    pub const DUPLICATE_SECRET: &str = "duplicate_secret";
    pub const UNDECLARED_SECRET: &str = "undeclared_secret";
    pub const INVALID_CONFIG_SCHEMA: &str = "invalid_config_schema";

    // The entry module.
    pub const ENTRY_NOT_FOUND: &str = "entry_not_found";
    pub const ENTRY_NOT_UTF8: &str = "entry_not_utf8";
    pub const SYNTAX_ERROR: &str = "syntax_error";
    pub const UNDECLARED_HOOK: &str = "undeclared_hook";
    pub const UNDECLARED_ROUTE: &str = "undeclared_route";
    pub const UNDECLARED_JOB: &str = "undeclared_job";
    pub const UNREGISTERED_HOOK: &str = "unregistered_hook";
    pub const UNREGISTERED_ROUTE: &str = "unregistered_route";
    pub const UNREGISTERED_JOB: &str = "unregistered_job";
    pub const DYNAMIC_REGISTRATION: &str = "dynamic_registration";
    pub const INVALID_REGISTRATION: &str = "invalid_registration";
    pub const DUPLICATE_REGISTRATION: &str = "duplicate_registration";
    pub const UNGRANTED_CAPABILITY: &str = "ungranted_capability";

    // Outgoing webhook endpoints.
    pub const INVALID_API_VERSION: &str = "invalid_api_version";
    pub const INVALID_URL: &str = "invalid_url";
    pub const INVALID_SECRET_REF: &str = "invalid_secret_ref";
    pub const INVALID_HEADER: &str = "invalid_header";
    pub const INVALID_SIGNING: &str = "invalid_signing";
    pub const INVALID_TRANSFORM: &str = "invalid_transform";
    pub const INVALID_RETRY: &str = "invalid_retry";
}
