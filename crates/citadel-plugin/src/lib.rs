//! Plugins and outgoing webhooks as code, the parts that need neither a
//! server nor a database.
//!
//! - [`Bundle`]: a plugin read from a directory, a `.zip` or a `.tar.gz`
//!   into memory, under size, count and compression-ratio caps, with every
//!   unsafe name or entry type refused; [`pack`] writes the canonical
//!   `.tar.gz` of one.
//! - [`Manifest`]: `citadel-plugin.json` or `.yaml` — slug, version,
//!   permissions (a script's capability grant), events, routes, jobs,
//!   secrets and a configuration schema.
//! - [`validate`]: the manifest and the entry module checked together,
//!   every problem at once as a located [`Diagnostic`] with a stable code:
//!   a handler registered for an event, route or job the manifest does not
//!   declare is an error where the `hook`/`route`/`job` call is.
//! - [`Endpoint`]: an outgoing webhook endpoint file, [`signature`]:
//!   Standard Webhooks signing and verification, [`retry`]: when a failed
//!   delivery is tried again.
//!
//! [`validate_path`] and [`pack_dir`] are what `citadel plugin validate`
//! and `citadel plugin pack` call; they return the text to print.
//!
//! This crate knows nothing of tenants, HTTP servers, storage or the
//! sandbox: the server installs what [`validate`] accepts, the engine runs
//! it.

mod bundle;
mod decode;
mod diag;
mod doc;
mod endpoint;
mod entry;
mod manifest;
pub mod retry;
mod runtime;
mod schema;
pub mod signature;
mod validate;

use std::path::Path;

pub use bundle::{Bundle, Limits, RATIO_FLOOR, normalize_name, pack};
pub use diag::{Diagnostic, Severity, codes};
pub use endpoint::{Delivery, Endpoint, Template, Transform};
pub use entry::{Kind as RegistrationKind, Registration};
pub use manifest::{
    DEFAULT_ROUTE_PERMISSION, EntryLanguage, JobDecl, MANIFEST_FILES, Manifest, Method, RouteAuth,
    RouteDecl, check_route_path, event_matches, is_event_pattern, is_slug, route_shape,
};
pub use retry::{RetryPolicy, next_attempt};
pub use runtime::{
    RouteMatch, handler_module, hook_input, job_input, match_route, route_input, transform_module,
};
pub use schema::{MAX_SCHEMA_BYTES, check_schema, validate_config};
pub use validate::{ValidPlugin, validate};

use sha2::{Digest, Sha256};

/// What validating a bundle found: the plugin when it is valid, and every
/// diagnostic (errors first refuse it; warnings do not).
#[derive(Debug, Clone)]
pub struct Report {
    pub plugin: Option<Box<ValidPlugin>>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.plugin.is_some()
    }

    /// One line per diagnostic, then a summary line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&d.to_string());
            out.push('\n');
        }
        let errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        let warnings = self.diagnostics.len() - errors;
        match &self.plugin {
            Some(p) => out.push_str(&format!(
                "ok: {} {} ({} events, {} routes, {} jobs; {warnings} warnings)\n",
                p.manifest.slug,
                p.manifest.version,
                p.manifest.events.len(),
                p.manifest.routes.len(),
                p.manifest.jobs.len(),
            )),
            None => out.push_str(&format!("invalid: {errors} errors, {warnings} warnings\n")),
        }
        out
    }

    fn of(result: Result<ValidPlugin, Vec<Diagnostic>>) -> Report {
        match result {
            Ok(p) => Report {
                diagnostics: p.warnings.clone(),
                plugin: Some(Box::new(p)),
            },
            Err(diagnostics) => Report {
                plugin: None,
                diagnostics,
            },
        }
    }
}

/// Reads a bundle from a directory, or from a `.zip`/`.tar.gz` file.
pub fn read_path(path: &Path, limits: &Limits) -> Result<Bundle, Diagnostic> {
    if path.is_dir() {
        return Bundle::from_dir(path, limits);
    }
    let meta = std::fs::metadata(path).map_err(|e| {
        Diagnostic::error(
            codes::IO_ERROR,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    if meta.len() > limits.max_archive_bytes {
        return Err(Diagnostic::error(
            codes::BUNDLE_TOO_LARGE,
            format!(
                "the archive is {} bytes, more than {}",
                meta.len(),
                limits.max_archive_bytes
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostic::error(
            codes::IO_ERROR,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    Bundle::from_bytes(&bytes, limits)
}

/// `citadel plugin validate PATH`: reads and validates a bundle with the
/// default limits.
pub fn validate_path(path: &Path) -> Report {
    match read_path(path, &Limits::default()) {
        Ok(bundle) => Report::of(validate(&bundle)),
        Err(d) => Report {
            plugin: None,
            diagnostics: vec![d],
        },
    }
}

/// A packed bundle, ready to upload.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The canonical `.tar.gz`.
    pub bytes: Vec<u8>,
    /// `{slug}-{version}.tar.gz`.
    pub file_name: String,
    /// SHA-256 of `bytes`, in hex.
    pub sha256: String,
    pub report: Report,
}

/// `citadel plugin pack DIR`: validates a directory and, when it is
/// valid, packs it; otherwise the report says why not.
pub fn pack_dir(dir: &Path) -> Result<Packed, Report> {
    let report = validate_path(dir);
    let Some(plugin) = &report.plugin else {
        return Err(report);
    };
    let bytes = pack(&plugin.bundle);
    let sha256 = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let file_name = format!(
        "{}-{}.tar.gz",
        plugin.manifest.slug, plugin.manifest.version
    );
    Ok(Packed {
        bytes,
        file_name,
        sha256,
        report,
    })
}
