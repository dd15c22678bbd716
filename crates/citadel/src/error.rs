//! What a subcommand returns when it does not succeed, and the exit code of
//! the stable CLI contract (SPEC.md) each kind maps to.

use std::fmt::Display;

/// A subcommand's failure. `main` prints it and exits with its code, so no
/// subcommand prints an error or picks an exit code itself.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Bad usage or input (a file, flag or setting): exit 2.
    Usage(anyhow::Error),
    /// The command could not do its work (the database, the sandbox hosts,
    /// the listen address, …): exit 1.
    Failed {
        error: anyhow::Error,
        /// What to do about it, printed indented below the error.
        hint: Option<String>,
    },
    /// An outcome already reported on the command's own output: the script
    /// threw, the check found errors, the audit chain is broken. Exit 1.
    Threw,
    /// A run hit a limit (reported): exit 3.
    Limit,
    /// Static analysis rejected the script (reported): exit 4.
    Rejected,
    /// `citadel jail`'s command ended with this non-zero code (or 124 at its
    /// deadline, 128+N for signal N), mirrored.
    Mirrored(u8),
}

/// Exit codes of the stable CLI contract.
pub(crate) mod exit {
    pub const THREW: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const LIMIT: u8 = 3;
    pub const REJECTED: u8 = 4;
}

impl CliError {
    pub(crate) fn usage(message: impl Display) -> Self {
        CliError::Usage(anyhow::Error::msg(message.to_string()))
    }

    pub(crate) fn failed(error: impl Into<anyhow::Error>) -> Self {
        CliError::Failed {
            error: error.into(),
            hint: None,
        }
    }

    /// Adds what to do about a failure (usage errors name their flag already).
    pub(crate) fn hint(self, text: impl Into<String>) -> Self {
        match self {
            CliError::Failed { error, .. } => CliError::Failed {
                error,
                hint: Some(text.into()),
            },
            other => other,
        }
    }

    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Failed { .. } | CliError::Threw => exit::THREW,
            CliError::Limit => exit::LIMIT,
            CliError::Rejected => exit::REJECTED,
            CliError::Mirrored(code) => *code,
        }
    }

    /// The text to print on standard error, if the outcome was not reported
    /// already: `citadel: what failed: because: because`, then the hint.
    pub(crate) fn message(&self) -> Option<String> {
        let (error, hint) = match self {
            CliError::Usage(error) => (error, None),
            CliError::Failed { error, hint } => (error, hint.as_deref()),
            CliError::Threw | CliError::Limit | CliError::Rejected | CliError::Mirrored(_) => {
                return None;
            }
        };
        let mut text = format!("citadel: {}", cause_chain(error));
        if let Some(hint) = hint {
            text.push_str("\n  ");
            text.push_str(hint);
        }
        Some(text)
    }
}

/// The error and its causes, outermost first, joined by `: `. A cause whose
/// text its error already shows (a `"…: {source}"` message) is not repeated.
fn cause_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// `.usage()?` and `.failed()?` on any error.
pub(crate) trait ResultExt<T> {
    /// Bad input, with what was being done: exit 2.
    fn usage(self, doing: impl Display + Send + Sync + 'static) -> Result<T, CliError>;
    /// A failed operation, with what was being done: exit 1.
    fn failed(self, doing: impl Display + Send + Sync + 'static) -> Result<T, CliError>;
}

impl<T, E> ResultExt<T> for Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn usage(self, doing: impl Display + Send + Sync + 'static) -> Result<T, CliError> {
        self.map_err(|e| CliError::Usage(anyhow::Error::new(e).context(doing)))
    }

    fn failed(self, doing: impl Display + Send + Sync + 'static) -> Result<T, CliError> {
        self.map_err(|e| CliError::failed(anyhow::Error::new(e).context(doing)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Refused;

    #[derive(Debug, thiserror::Error)]
    #[error("pool timed out: {0}")]
    struct ShowsItsSource(#[source] Refused);

    #[test]
    fn the_cause_chain_is_printed_once_outermost_first() {
        let e: Result<(), _> = Err(ShowsItsSource(Refused));
        let e = e.failed("cannot open the database").unwrap_err();
        assert_eq!(
            e.hint("is it running?").message().as_deref(),
            Some(
                "citadel: cannot open the database: pool timed out: connection refused\n  is it running?"
            )
        );
    }

    #[test]
    fn each_kind_has_its_exit_code_and_reported_ones_print_nothing() {
        let cases = [
            (CliError::usage("bad flag"), 2, Some("citadel: bad flag")),
            (
                CliError::failed(Refused),
                1,
                Some("citadel: connection refused"),
            ),
            (CliError::Threw, 1, None),
            (CliError::Limit, 3, None),
            (CliError::Rejected, 4, None),
            (CliError::Mirrored(124), 124, None),
        ];
        for (error, code, message) in cases {
            assert_eq!(
                (error.exit_code(), error.message().as_deref()),
                (code, message)
            );
        }
    }
}
