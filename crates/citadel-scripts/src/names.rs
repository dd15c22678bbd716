//! Script names are paths: folders separated by `/`, e.g. `billing/on-paid`.
//! Role scopes are folder prefixes (`billing/`), so a name is always
//! checked against them as a whole path.

/// Why a name is not a valid script name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid script name `{name}`: {reason}")]
pub struct NameError {
    pub name: String,
    pub reason: &'static str,
}

const MAX_NAME: usize = 200;
const MAX_DEPTH: usize = 8;

/// A name is 1–8 segments of `[a-z0-9][a-z0-9_.-]*` joined by `/`, at most
/// 200 bytes. No `..`, no empty segments, no leading or trailing slash.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let fail = |reason| {
        Err(NameError {
            name: name.chars().take(MAX_NAME).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > MAX_NAME {
        return fail("it is longer than 200 bytes");
    }
    let segments: Vec<&str> = name.split('/').collect();
    if segments.len() > MAX_DEPTH {
        return fail("it is nested deeper than 8 folders");
    }
    for s in segments {
        if s.is_empty() {
            return fail("it has an empty segment (a leading, trailing or double `/`)");
        }
        let mut bytes = s.bytes();
        let first = bytes.next().unwrap_or(b'-');
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return fail("each segment starts with a lowercase letter or a digit");
        }
        if !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b)) {
            return fail("only lowercase letters, digits, `_`, `.`, `-` and `/` are allowed");
        }
    }
    Ok(())
}

/// A folder prefix names a folder and ends with `/` (`billing/`).
pub fn validate_folder(folder: &str) -> Result<(), NameError> {
    match folder.strip_suffix('/') {
        Some(inner) => validate_name(inner),
        None => Err(NameError {
            name: folder.chars().take(MAX_NAME).collect(),
            reason: "a folder ends with `/`",
        }),
    }
}

/// The folder that holds installed plugins' handler modules
/// (`plugins/{slug}`) and their jobs' schedules (`plugins/{slug}/{job}`);
/// nothing else may be saved or scheduled in it.
pub const PLUGIN_FOLDER: &str = "plugins/";

/// True for a name in [`PLUGIN_FOLDER`] (or the folder itself).
pub fn is_reserved_name(name: &str) -> bool {
    name == "plugins" || name.starts_with(PLUGIN_FOLDER)
}

/// The catalog entry of plugin `slug`'s handler module.
pub fn plugin_entry(slug: &str) -> String {
    format!("{PLUGIN_FOLDER}{slug}")
}

/// The plugin whose handler module `name` is, if it is one.
pub fn plugin_of_entry(name: &str) -> Option<&str> {
    name.strip_prefix(PLUGIN_FOLDER)
        .filter(|s| !s.is_empty() && !s.contains('/'))
}

/// The key prefix of plugin `slug`'s key-value entries: its runs read and
/// write only below it (the gateway adds it), and uninstalling removes it.
pub fn plugin_kv_prefix(slug: &str) -> String {
    format!("plugin:{slug}:")
}

/// The tenant secret that holds plugin `slug`'s secret `name`
/// (`welcome-email`, `API_KEY` → `PLUGIN_WELCOME_EMAIL__API_KEY`): a
/// plugin's code asks for `API_KEY`, and reaches only its own.
pub fn plugin_secret_name(slug: &str, name: &str) -> String {
    format!(
        "PLUGIN_{}__{name}",
        slug.to_ascii_uppercase().replace('-', "_")
    )
}

/// The folder a script is in (`billing/` for `billing/on-paid`), or `""`.
pub fn folder_of(name: &str) -> &str {
    name.rfind('/').map_or("", |i| &name[..=i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "on-paid",
            "billing/on-paid",
            "a/b/c_d.e-f",
            "2fa/check",
        ] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("", "it is empty"),
            (
                "/a",
                "it has an empty segment (a leading, trailing or double `/`)",
            ),
            (
                "a/",
                "it has an empty segment (a leading, trailing or double `/`)",
            ),
            (
                "a//b",
                "it has an empty segment (a leading, trailing or double `/`)",
            ),
            (
                "../etc",
                "each segment starts with a lowercase letter or a digit",
            ),
            (
                "a/.hidden",
                "each segment starts with a lowercase letter or a digit",
            ),
            (
                "Billing",
                "each segment starts with a lowercase letter or a digit",
            ),
            (
                "a b",
                "only lowercase letters, digits, `_`, `.`, `-` and `/` are allowed",
            ),
            ("a/b/c/d/e/f/g/h/i", "it is nested deeper than 8 folders"),
        ];
        for (name, reason) in cases {
            assert_eq!(validate_name(name).unwrap_err().reason, reason, "{name}");
        }
        assert_eq!(
            validate_name(&"a".repeat(201)).unwrap_err().reason,
            "it is longer than 200 bytes"
        );
    }

    #[test]
    fn folders() {
        assert_eq!(folder_of("billing/on-paid"), "billing/");
        assert_eq!(folder_of("a/b/c"), "a/b/");
        assert_eq!(folder_of("top"), "");
        assert_eq!(validate_folder("billing/"), Ok(()));
        assert_eq!(
            validate_folder("billing").unwrap_err().reason,
            "a folder ends with `/`"
        );
    }
}
