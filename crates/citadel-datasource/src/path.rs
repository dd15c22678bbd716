//! Where a SQLite data source may be: a file under the root an operator
//! configured, named relative to it. The name is refused if it climbs
//! (`..`) or is absolute, and the file is canonicalised (symlinks
//! resolved) and must still be under the canonical root, so a link cannot
//! lead out either.

use std::path::{Component, Path, PathBuf};

use crate::QueryError;

/// The canonical path of the existing file `relative` names under `root`,
/// or [`QueryError::SourceUnavailable`] saying why not (absolute, climbing,
/// missing, not a file, or outside the root once links are resolved).
pub fn resolve_sqlite_path(root: &Path, relative: &str) -> Result<PathBuf, QueryError> {
    if relative.is_empty() {
        return Err(QueryError::unavailable("the SQLite path is empty"));
    }
    if relative.contains('\0') {
        return Err(QueryError::unavailable(
            "the SQLite path contains a NUL byte",
        ));
    }
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(QueryError::unavailable(format!(
                    "the SQLite path `{relative}` climbs out with `..`"
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(QueryError::unavailable(format!(
                    "the SQLite path `{relative}` must be relative to the data-source root"
                )));
            }
        }
    }
    let root = root.canonicalize().map_err(|e| {
        QueryError::unavailable(format!("the data-source root cannot be opened: {e}"))
    })?;
    let path = root.join(relative).canonicalize().map_err(|e| {
        QueryError::unavailable(format!(
            "the SQLite file `{relative}` cannot be opened: {e}"
        ))
    })?;
    if !path.starts_with(&root) {
        return Err(QueryError::unavailable(format!(
            "the SQLite path `{relative}` leads outside the data-source root"
        )));
    }
    if !path.is_file() {
        return Err(QueryError::unavailable(format!(
            "the SQLite path `{relative}` is not a file"
        )));
    }
    Ok(path)
}
