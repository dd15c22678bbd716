//! Documents with positions: a manifest or an endpoint file (YAML or JSON)
//! loaded into a small tree whose every node knows its line and column, so
//! that every problem found later — an unknown field, a bad cron, a slug
//! with spaces — can be reported where it is, and all of them at once.
//!
//! YAML is read with the core schema of YAML 1.2 (so `on:` is the string
//! `on`, not `true`). Anchors, aliases and tags are refused: a manifest
//! never needs them and aliases are how a small document expands into a
//! huge one. JSON is checked by `serde_json` first (its errors are the
//! clearest) and then read through the same YAML parser for positions,
//! since JSON is YAML's flow style.

use std::borrow::Cow;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diag::{Diagnostic, codes};

/// The deepest nesting a document may have.
const MAX_DEPTH: usize = 32;
/// The most nodes a document may have.
const MAX_NODES: usize = 20_000;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order; keys are strings (others are refused).
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub line: u32,
    pub column: u32,
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "an object",
        }
    }

    /// The same data as JSON, for parts handed to serde types.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Which syntax a document is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Yaml,
}

/// Loads a document. On failure, the diagnostics (without a file; the
/// caller adds it) say where it stopped parsing.
pub(crate) fn load(text: &str, format: Format) -> Result<Node, Vec<Diagnostic>> {
    if format == Format::Json {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
            return Err(vec![
                Diagnostic::error(codes::MANIFEST_SYNTAX, strip_position(&e.to_string()))
                    .at(e.line() as u32, e.column() as u32),
            ]);
        }
        // Tabs are JSON whitespace but not always YAML whitespace.
        if text.contains('\t') {
            let spaced = text.replace('\t', " ");
            return load_yaml(&spaced);
        }
    }
    load_yaml(text)
}

/// serde_json appends " at line L column C"; the diagnostic carries them.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn load_yaml(text: &str) -> Result<Node, Vec<Diagnostic>> {
    let mut loader = Loader {
        parser: Parser::new_from_str(text),
        nodes: 0,
        diags: Vec::new(),
    };
    let root = loader.document();
    match root {
        Some(node) if loader.diags.is_empty() => Ok(node),
        _ => {
            if loader.diags.is_empty() {
                loader.diags.push(
                    Diagnostic::error(codes::MANIFEST_SYNTAX, "the document is empty").at(1, 1),
                );
            }
            Err(loader.diags)
        }
    }
}

struct Loader<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    nodes: usize,
    diags: Vec<Diagnostic>,
}

fn pos(span: &Span) -> (u32, u32) {
    (span.start.line() as u32, span.start.col() as u32 + 1)
}

impl<'a> Loader<'a> {
    fn next(&mut self) -> Option<(Event<'a>, Span)> {
        match self.parser.next_event()? {
            Ok(ev) => Some(ev),
            Err(e) => {
                let m = e.marker();
                self.diags.push(
                    Diagnostic::error(codes::MANIFEST_SYNTAX, e.info().to_owned())
                        .at(m.line() as u32, m.col() as u32 + 1),
                );
                None
            }
        }
    }

    fn fail(&mut self, span: &Span, message: impl Into<String>) {
        let (line, column) = pos(span);
        self.diags
            .push(Diagnostic::error(codes::MANIFEST_SYNTAX, message).at(line, column));
    }

    fn document(&mut self) -> Option<Node> {
        let mut root = None;
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentStart(_) | Event::DocumentEnd => {}
                Event::StreamEnd => return root,
                _ if root.is_some() => {
                    self.fail(&span, "a manifest is a single document");
                    return None;
                }
                ev => root = Some(self.node(ev, span, 0)?),
            }
        }
    }

    fn node(&mut self, ev: Event<'a>, span: Span, depth: usize) -> Option<Node> {
        let (line, column) = pos(&span);
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.fail(
                &span,
                format!("the document has more than {MAX_NODES} values"),
            );
            return None;
        }
        if depth > MAX_DEPTH {
            self.fail(
                &span,
                format!("the document nests deeper than {MAX_DEPTH} levels"),
            );
            return None;
        }
        let value = match ev {
            Event::Alias(_) => {
                self.fail(&span, "aliases (`*name`) are not accepted");
                return None;
            }
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    self.fail(&span, "anchors and tags are not accepted");
                    return None;
                }
                scalar(text, style)
            }
            Event::SequenceStart(anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    self.fail(&span, "anchors and tags are not accepted");
                    return None;
                }
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    if ev == Event::SequenceEnd {
                        break;
                    }
                    items.push(self.node(ev, span, depth + 1)?);
                }
                Value::Seq(items)
            }
            Event::MappingStart(anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    self.fail(&span, "anchors and tags are not accepted");
                    return None;
                }
                let mut entries: Vec<(Key, Node)> = Vec::new();
                loop {
                    let (ev, kspan) = self.next()?;
                    if ev == Event::MappingEnd {
                        break;
                    }
                    let key = self.node(ev, kspan, depth + 1)?;
                    let name = match key.value {
                        Value::Str(s) => s,
                        _ => {
                            self.fail(&kspan, format!("keys must be strings, not {}", key.kind()));
                            return None;
                        }
                    };
                    let (ev, vspan) = self.next()?;
                    let value = self.node(ev, vspan, depth + 1)?;
                    let key = Key {
                        name,
                        line: key.line,
                        column: key.column,
                    };
                    if entries.iter().any(|(k, _)| k.name == key.name) {
                        self.diags.push(
                            Diagnostic::error(
                                codes::DUPLICATE_KEY,
                                format!("`{}` appears twice", key.name),
                            )
                            .at(key.line, key.column),
                        );
                    }
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
            _ => {
                self.fail(&span, "unexpected YAML event");
                return None;
            }
        };
        Some(Node {
            value,
            line,
            column,
        })
    }
}

/// The YAML 1.2 core schema: only plain scalars are resolved.
fn scalar(text: Cow<'_, str>, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::Str(text.into_owned());
    }
    match &*text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        t => {
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            if !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && let Ok(i) = t.parse::<i64>()
            {
                return Value::Int(i);
            }
            let numeric = digits
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_digit() || b == b'.')
                && digits
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b));
            if numeric && let Ok(f) = t.parse::<f64>() {
                return Value::Float(f);
            }
            Value::Str(t.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_core_schema() {
        let doc = load("a: 1\non: [x, 'y']\nb:\n  c: true\n", Format::Yaml).unwrap();
        let Value::Map(entries) = &doc.value else {
            panic!()
        };
        assert_eq!(entries[0].0.name, "a");
        assert_eq!(entries[0].1.value, Value::Int(1));
        assert_eq!(entries[1].0.name, "on");
        assert_eq!((entries[1].0.line, entries[1].0.column), (2, 1));
        let Value::Seq(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!((items[1].line, items[1].column), (2, 9));
        let Value::Map(inner) = &entries[2].1.value else {
            panic!()
        };
        assert_eq!((inner[0].0.line, inner[0].0.column), (4, 3));
        assert_eq!(inner[0].1.value, Value::Bool(true));
    }

    #[test]
    fn json_reads_with_positions() {
        let doc = load("{\n  \"slug\": \"x\",\n\t\"n\": 2.5\n}", Format::Json).unwrap();
        let Value::Map(entries) = &doc.value else {
            panic!()
        };
        assert_eq!((entries[0].0.line, entries[0].0.column), (2, 3));
        assert_eq!(entries[1].1.value, Value::Float(2.5));
        let err = load("{\"a\": }", Format::Json).unwrap_err();
        assert_eq!(err[0].code, codes::MANIFEST_SYNTAX);
        assert_eq!((err[0].line, err[0].column), (Some(1), Some(7)));
    }

    #[test]
    fn hostile_yaml_is_refused() {
        for text in [
            "a: &x [1]\nb: *x\n",
            "a: !!str 1\n",
            "a: 1\n---\nb: 2\n",
            "a: [\n",
            "",
        ] {
            let err = load(text, Format::Yaml).unwrap_err();
            assert_eq!(err[0].code, codes::MANIFEST_SYNTAX, "{text:?}");
        }
        for n in [40, 100_000] {
            let deep = format!("{}{}", "[".repeat(n), "]".repeat(n));
            assert!(load(&deep, Format::Yaml).is_err());
            assert!(load(&deep, Format::Json).is_err());
            let deep = format!("{}1", "- ".repeat(n));
            assert!(load(&deep, Format::Yaml).is_err());
        }
        let dup = load("a: 1\na: 2\n", Format::Yaml).unwrap_err();
        assert_eq!(dup[0].code, codes::DUPLICATE_KEY);
        assert_eq!((dup[0].line, dup[0].column), (Some(2), Some(1)));
    }
}
