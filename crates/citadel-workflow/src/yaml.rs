//! A bounded YAML loader: events from `saphyr-parser` become a small tree of
//! located nodes, and the limits are enforced *while* the events arrive, so
//! a hostile document is refused before it is parsed in full:
//!
//! - the text is at most [`MAX_WORKFLOW_BYTES`], checked before parsing;
//! - aliases are refused outright. A workflow never needs them, and with no
//!   alias there is no expansion at all, so no billion laughs;
//! - nesting is at most [`MAX_YAML_DEPTH`] and the node count at most
//!   [`MAX_YAML_NODES`];
//! - one document only, no tags, no duplicate keys.
//!
//! Scalars are resolved as YAML 1.2's core schema does (`true`, `1`, `1.5`,
//! `null`, `~`); quoted scalars are always strings.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diag::{Diagnostic, Pos, codes};

/// The largest workflow document accepted, in bytes.
pub const MAX_WORKFLOW_BYTES: usize = 1024 * 1024;
/// The deepest nesting of mappings and sequences accepted.
pub const MAX_YAML_DEPTH: usize = 32;
/// The most nodes (scalars, mappings, sequences) one document may have.
pub const MAX_YAML_NODES: usize = 100_000;

/// A scalar resolved by the core schema.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    /// The value and its text as written (`1.0` stays `1.0` as a version).
    Float(f64, String),
    Str(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Keys are strings in a workflow; a non-string key is kept as its
    /// text and reported by the schema.
    Map(Vec<(Key, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

/// A YAML node and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub pos: Pos,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// What kind of node this is, for messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(Scalar::Null) => "null",
            NodeKind::Scalar(Scalar::Bool(_)) => "a boolean",
            NodeKind::Scalar(Scalar::Int(_)) => "an integer",
            NodeKind::Scalar(Scalar::Float(..)) => "a number",
            NodeKind::Scalar(Scalar::Str(_)) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// The node as JSON (for inputs, bodies and defaults).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Scalar(Scalar::Null) => Value::Null,
            NodeKind::Scalar(Scalar::Bool(b)) => Value::Bool(*b),
            NodeKind::Scalar(Scalar::Int(i)) => Value::from(*i),
            NodeKind::Scalar(Scalar::Float(f, _)) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            NodeKind::Scalar(Scalar::Str(s)) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn pos_of(span: &Span) -> Pos {
    // saphyr's lines are 1-based and its columns 0-based.
    Pos::new(span.start.line(), span.start.col() + 1)
}

enum Frame {
    Seq(Pos, Vec<Node>),
    Map(Pos, Vec<(Key, Node)>, Option<Key>),
}

/// Parses `text` into one located tree and the duplicate keys found, or
/// the first problem that stops parsing (nothing past a syntax error or a
/// refused bomb can be located reliably). An empty document has no tree.
pub fn load(text: &str) -> Result<(Option<Node>, Vec<Diagnostic>), Diagnostic> {
    if text.len() > MAX_WORKFLOW_BYTES {
        return Err(Diagnostic::new(
            codes::YAML_TOO_LARGE,
            Pos::new(1, 1),
            format!(
                "the document is {} bytes, over the limit of {} bytes",
                text.len(),
                MAX_WORKFLOW_BYTES
            ),
        ));
    }
    // Editors on some systems start files with a byte order mark; it is
    // not part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut nodes = 0usize;
    let mut documents = 0usize;
    let mut duplicates: Vec<Diagnostic> = Vec::new();
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            let m = e.marker();
            let pos = Pos::new(m.line(), m.col() + 1);
            // The scanner reads flow collections ahead of the events and
            // stops at 255 levels on its own.
            if e.info() == "recursion limit exceeded" {
                return Diagnostic::new(
                    codes::YAML_TOO_DEEP,
                    pos,
                    format!("the document nests deeper than {MAX_YAML_DEPTH} levels"),
                );
            }
            Diagnostic::new(
                codes::YAML_SYNTAX,
                pos,
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        let pos = pos_of(&span);
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {
                continue;
            }
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(Diagnostic::new(
                        codes::YAML_MULTIPLE_DOCUMENTS,
                        pos,
                        "a workflow file holds one YAML document",
                    ));
                }
                continue;
            }
            Event::Alias(_) => {
                return Err(Diagnostic::new(
                    codes::YAML_ALIAS,
                    pos,
                    "YAML aliases (`*name`) are not accepted in workflows",
                ));
            }
            Event::Scalar(value, style, _anchor, tag) => {
                if let Some(tag) = tag {
                    return Err(refuse_tag(&tag, pos));
                }
                Node {
                    kind: NodeKind::Scalar(resolve(&value, style)),
                    pos,
                }
            }
            Event::SequenceStart(_, ref tag) | Event::MappingStart(_, ref tag) => {
                if let Some(tag) = tag {
                    return Err(refuse_tag(tag, pos));
                }
                count(&mut nodes, pos)?;
                if stack.len() >= MAX_YAML_DEPTH {
                    return Err(Diagnostic::new(
                        codes::YAML_TOO_DEEP,
                        pos,
                        format!("the document nests deeper than {MAX_YAML_DEPTH} levels"),
                    ));
                }
                let is_seq = matches!(event, Event::SequenceStart(..));
                stack.push(if is_seq {
                    Frame::Seq(pos, Vec::new())
                } else {
                    Frame::Map(pos, Vec::new(), None)
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(pos, items)) => Node {
                    kind: NodeKind::Seq(items),
                    pos,
                },
                _ => continue,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(pos, entries, _)) => Node {
                    kind: NodeKind::Map(entries),
                    pos,
                },
                _ => continue,
            },
        };
        if matches!(node.kind, NodeKind::Scalar(_)) {
            count(&mut nodes, node.pos)?;
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, pending)) => match pending.take() {
                None => {
                    let name = match &node.kind {
                        NodeKind::Scalar(Scalar::Str(s)) => s.clone(),
                        NodeKind::Scalar(Scalar::Null) => String::new(),
                        NodeKind::Scalar(Scalar::Bool(b)) => b.to_string(),
                        NodeKind::Scalar(Scalar::Int(i)) => i.to_string(),
                        NodeKind::Scalar(Scalar::Float(_, raw)) => raw.clone(),
                        _ => {
                            return Err(Diagnostic::new(
                                codes::FIELD_TYPE,
                                node.pos,
                                "mapping keys must be plain strings",
                            ));
                        }
                    };
                    if entries.iter().any(|(k, _)| k.name == name) {
                        duplicates.push(Diagnostic::new(
                            codes::YAML_DUPLICATE_KEY,
                            node.pos,
                            format!("the key `{name}` is given twice"),
                        ));
                    }
                    *pending = Some(Key {
                        name,
                        pos: node.pos,
                    });
                }
                Some(key) => entries.push((key, node)),
            },
        }
    }
    Ok((root, duplicates))
}

/// Tags are refused, standard ones included: a workflow's types come from
/// its schema, and a tag is how YAML loaders elsewhere are told to build
/// objects.
fn refuse_tag(tag: &saphyr_parser::Tag, pos: Pos) -> Diagnostic {
    Diagnostic::new(
        codes::YAML_TAG,
        pos,
        format!(
            "YAML tags such as `{}{}` are not accepted in workflows",
            tag.handle, tag.suffix
        ),
    )
}

fn count(nodes: &mut usize, pos: Pos) -> Result<(), Diagnostic> {
    *nodes += 1;
    if *nodes > MAX_YAML_NODES {
        return Err(Diagnostic::new(
            codes::YAML_TOO_MANY_NODES,
            pos,
            format!("the document has more than {MAX_YAML_NODES} nodes"),
        ));
    }
    Ok(())
}

fn resolve(value: &str, style: ScalarStyle) -> Scalar {
    if style != ScalarStyle::Plain {
        return Scalar::Str(value.to_owned());
    }
    match value {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        _ => {}
    }
    if let Some(i) = parse_int(value) {
        return Scalar::Int(i);
    }
    let looks_numeric = value
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && value.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric && let Ok(f) = value.parse::<f64>() {
        return Scalar::Float(f, value.to_owned());
    }
    Scalar::Str(value.to_owned())
}

fn parse_int(value: &str) -> Option<i64> {
    let (neg, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let parsed = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(if neg { -parsed } else { parsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let node = load("a: 1\nb:\n  - x\n").unwrap().0.unwrap();
        let NodeKind::Map(entries) = node.kind else {
            panic!()
        };
        assert_eq!(entries[0].0.pos, Pos::new(1, 1));
        assert_eq!(entries[1].0.pos, Pos::new(2, 1));
        let NodeKind::Seq(items) = &entries[1].1.kind else {
            panic!()
        };
        assert_eq!(items[0].pos, Pos::new(3, 5));
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        assert_eq!(
            resolve("1.0", ScalarStyle::Plain),
            Scalar::Float(1.0, "1.0".into())
        );
        assert_eq!(resolve("12", ScalarStyle::Plain), Scalar::Int(12));
        assert_eq!(
            resolve("12", ScalarStyle::DoubleQuoted),
            Scalar::Str("12".into())
        );
        assert_eq!(resolve("~", ScalarStyle::Plain), Scalar::Null);
        assert_eq!(
            resolve("yes", ScalarStyle::Plain),
            Scalar::Str("yes".into())
        );
    }

    #[test]
    fn aliases_are_refused() {
        let err = load("a: &x [1]\nb: *x\n").unwrap_err();
        assert_eq!(err.code, codes::YAML_ALIAS);
        assert_eq!(err.pos(), Pos::new(2, 4));
    }

    #[test]
    fn columns_count_characters() {
        let node = load("a: [\u{e9}\u{e9}, x]\n").unwrap().0.unwrap();
        let NodeKind::Map(entries) = node.kind else {
            panic!()
        };
        let NodeKind::Seq(items) = &entries[0].1.kind else {
            panic!()
        };
        assert_eq!(items[1].pos, Pos::new(1, 9));
    }
}
