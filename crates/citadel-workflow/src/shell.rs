//! Rendering a `shell` step's command so that no value can inject.
//!
//! The command template is read as `/bin/sh` would read it, far enough to
//! know the quoting context of each `{{ … }}`: outside quotes, inside
//! `'…'`, or inside `"…"`. Each value is then escaped for exactly that
//! context, so it always ends up as literal text inside one word:
//!
//! - outside quotes it becomes a single-quoted word (`'it'\''s'`);
//! - inside `'…'` each `'` becomes `'\''` (close, escaped quote, reopen);
//! - inside `"…"` each of `\`, `"`, `$` and `` ` `` gets a backslash.
//!
//! Where no escaping can be sure to hold, the template is refused instead:
//! a `{{ … }}` inside `$(…)`, `${…}` or backquotes (quoting starts over in
//! there), in a `#` comment (a newline in the value would end it), after a
//! `<<` here-document marker (its body expands `$(…)` even in quotes),
//! inside bash's `$'…'` (where a backslash can escape the closing quote),
//! straight after a backslash, or straight after a `$` (`$'…'` and
//! `"$(…"` would change what the quotes mean).

use crate::diag::codes;
use crate::expr::{EvalError, ExprError, Scope, Segment, Template, display, eval_raw};

/// Where a `{{ … }}` stands in a shell command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quoting {
    Unquoted,
    SingleQuoted,
    DoubleQuoted,
}

/// Escapes `value` for `ctx`, so `/bin/sh` reads it back as exactly
/// `value`, as (part of) one word.
pub fn escape(value: &str, ctx: Quoting) -> String {
    match ctx {
        Quoting::Unquoted => format!("'{}'", value.replace('\'', r"'\''")),
        Quoting::SingleQuoted => value.replace('\'', r"'\''"),
        Quoting::DoubleQuoted => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                if matches!(c, '\\' | '"' | '$' | '`') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
    }
}

/// A `shell` step's command, with the quoting context of each `{{ … }}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ShellCommand {
    template: Template,
    contexts: Vec<Quoting>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Unquoted,
    Single,
    Double,
    /// Bash's `$'…'`, where backslash escapes apply.
    AnsiC,
}

fn refuse(why: &str) -> ExprError {
    ExprError {
        code: codes::SHELL_CONTEXT,
        message: format!("a `{{{{ … }}}}` {why} cannot be escaped safely"),
    }
}

impl ShellCommand {
    pub fn parse(src: &str) -> Result<ShellCommand, ExprError> {
        ShellCommand::parse_in(src, false)
    }

    /// As [`ShellCommand::parse`], with `item` and `index` in scope.
    pub fn parse_in(src: &str, item: bool) -> Result<ShellCommand, ExprError> {
        let template = Template::parse(src, item)?;
        let mut contexts = Vec::new();
        let mut state = State::Unquoted;
        // Open `$(`, `${` and backquotes, outside single quotes.
        let mut substitutions: Vec<char> = Vec::new();
        let mut comment = false;
        let mut heredoc = false;
        // What the last character of text was, for `\{{` and `${{`.
        let mut last: Option<char> = None;
        let mut escaped = false;
        let mut at_start = true;
        for segment in template.segments() {
            match segment {
                Segment::Expr(_) => {
                    if comment {
                        return Err(refuse("in a comment"));
                    }
                    if heredoc {
                        return Err(refuse("in a command with a here-document"));
                    }
                    if !substitutions.is_empty() {
                        return Err(refuse("inside a command or parameter substitution"));
                    }
                    if escaped {
                        return Err(refuse("straight after a backslash"));
                    }
                    if last == Some('$') && state != State::Single {
                        return Err(refuse("straight after `$`"));
                    }
                    contexts.push(match state {
                        State::Unquoted => Quoting::Unquoted,
                        State::Single => Quoting::SingleQuoted,
                        State::Double => Quoting::DoubleQuoted,
                        State::AnsiC => return Err(refuse("inside `$'…'`")),
                    });
                    last = None;
                    at_start = false;
                }
                Segment::Text(text) => {
                    let chars: Vec<char> = text.chars().collect();
                    let mut i = 0;
                    while i < chars.len() {
                        let c = chars[i];
                        let next = chars.get(i + 1).copied();
                        last = Some(c);
                        if escaped {
                            escaped = false;
                            i += 1;
                            continue;
                        }
                        if comment {
                            if c == '\n' {
                                comment = false;
                            }
                            i += 1;
                            continue;
                        }
                        match state {
                            State::Single => {
                                if c == '\'' {
                                    state = State::Unquoted;
                                }
                            }
                            State::AnsiC => match c {
                                '\\' => escaped = true,
                                '\'' => state = State::Unquoted,
                                _ => {}
                            },
                            State::Double | State::Unquoted => match c {
                                '\\' => escaped = true,
                                '"' if state == State::Double => state = State::Unquoted,
                                '"' => state = State::Double,
                                '\'' if state == State::Unquoted => {
                                    let dollar = i.checked_sub(1).map(|p| chars[p]) == Some('$');
                                    state = if dollar { State::AnsiC } else { State::Single };
                                }
                                '`' => {
                                    if substitutions.last() == Some(&'`') {
                                        substitutions.pop();
                                    } else {
                                        substitutions.push('`');
                                    }
                                }
                                '$' if matches!(next, Some('(') | Some('{')) => {
                                    substitutions.push(if next == Some('(') { ')' } else { '}' });
                                    i += 1;
                                }
                                ')' | '}' if substitutions.last() == Some(&c) => {
                                    substitutions.pop();
                                }
                                '#' if state == State::Unquoted && substitutions.is_empty() => {
                                    // A value just before `#` is part of its word.
                                    let word_start = match i.checked_sub(1).map(|p| chars[p]) {
                                        None => at_start,
                                        Some(p) => p.is_whitespace() || ";|&()".contains(p),
                                    };
                                    if word_start {
                                        comment = true;
                                    }
                                }
                                '<' if state == State::Unquoted && next == Some('<') => {
                                    heredoc = true;
                                }
                                _ => {}
                            },
                        }
                        i += 1;
                    }
                    at_start = false;
                }
            }
        }
        if state != State::Unquoted && !contexts.is_empty() {
            return Err(ExprError {
                code: codes::SHELL_CONTEXT,
                message: "the command has an unterminated quote".into(),
            });
        }
        if heredoc && !contexts.is_empty() {
            return Err(refuse("in a command with a here-document"));
        }
        Ok(ShellCommand { template, contexts })
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    /// The quoting context of each `{{ … }}`, in order.
    pub fn contexts(&self) -> &[Quoting] {
        &self.contexts
    }

    /// The command with every value escaped for where it stands.
    pub fn render(&self, scope: &Scope) -> Result<String, EvalError> {
        let mut out = String::new();
        let mut contexts = self.contexts.iter();
        for segment in self.template.segments() {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Expr(e) => {
                    let value = display(&eval_raw(e, scope)?)?;
                    if value.contains('\0') {
                        return Err(EvalError::Failed(
                            "a value in a shell command contains a NUL byte".into(),
                        ));
                    }
                    let ctx = contexts.next().copied().unwrap_or(Quoting::Unquoted);
                    out.push_str(&escape(&value, ctx));
                }
            }
            if out.len() > crate::expr::MAX_RENDERED_BYTES {
                return Err(EvalError::TooLarge {
                    limit: crate::expr::MAX_RENDERED_BYTES,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contexts(src: &str) -> Result<Vec<Quoting>, &'static str> {
        ShellCommand::parse(src)
            .map(|c| c.contexts().to_vec())
            .map_err(|e| e.code)
    }

    #[test]
    fn contexts_are_read_like_sh() {
        use Quoting::*;
        assert_eq!(
            contexts("echo 'Hello {{ inputs.name }}!'"),
            Ok(vec![SingleQuoted])
        );
        assert_eq!(
            contexts("echo \"a {{ inputs.a }}\" {{ inputs.b }}"),
            Ok(vec![DoubleQuoted, Unquoted])
        );
        assert_eq!(contexts("echo \"it's\" {{ inputs.a }}"), Ok(vec![Unquoted]));
        assert_eq!(contexts("echo \\' {{ inputs.a }}"), Ok(vec![Unquoted]));
        assert_eq!(contexts("echo a#b {{ inputs.a }}"), Ok(vec![Unquoted]));
        assert_eq!(
            contexts("echo {{ inputs.a }}#{{ inputs.b }}"),
            Ok(vec![Unquoted, Unquoted])
        );
    }

    #[test]
    fn unsafe_contexts_are_refused() {
        for src in [
            "echo $(echo {{ inputs.a }})",
            "echo `echo {{ inputs.a }}`",
            "echo ${X:-{{ inputs.a }}}",
            "echo hi # {{ inputs.a }}",
            "cat <<EOF\n{{ inputs.a }}\nEOF",
            "echo \\{{ inputs.a }}",
            "echo ${{ inputs.a }}",
            "echo \"${{ inputs.a }}\"",
            "echo '{{ inputs.a }}",
            "echo $'{{ inputs.a }}'",
            "echo $'\\'{{ inputs.a }}'",
        ] {
            assert_eq!(contexts(src), Err(codes::SHELL_CONTEXT), "{src}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("it's", Quoting::Unquoted), r"'it'\''s'");
        assert_eq!(escape("", Quoting::Unquoted), "''");
        assert_eq!(escape("a\"$`\\", Quoting::DoubleQuoted), "a\\\"\\$\\`\\\\");
    }
}
