//! Reading typed values out of a located document while collecting every
//! problem, instead of stopping at the first as serde does.

use crate::diag::{Diagnostic, codes};
use crate::doc::{Node, Value};

/// Where diagnostics of one document go.
pub(crate) struct Sink {
    pub file: String,
    pub diags: Vec<Diagnostic>,
}

impl Sink {
    pub fn new(file: &str) -> Sink {
        Sink {
            file: file.to_owned(),
            diags: Vec::new(),
        }
    }

    pub fn error(
        &mut self,
        code: &'static str,
        line: u32,
        column: u32,
        message: impl Into<String>,
    ) {
        self.diags.push(
            Diagnostic::error(code, message)
                .in_file(&self.file)
                .at(line, column),
        );
    }

    pub fn at(&mut self, code: &'static str, node: &Node, message: impl Into<String>) {
        self.error(code, node.line, node.column, message);
    }

    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }

    /// Reports a node of the wrong kind.
    pub fn wrong_type(&mut self, path: &str, node: &Node, want: &str) {
        self.at(
            codes::INVALID_TYPE,
            node,
            format!("`{path}` must be {want}, not {}", node.kind()),
        );
    }

    pub fn string(&mut self, path: &str, node: &Node) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(path, node, "a string");
                None
            }
        }
    }

    pub fn uint(&mut self, path: &str, node: &Node) -> Option<u64> {
        match node.value {
            Value::Int(i) if i >= 0 => Some(i as u64),
            _ => {
                self.wrong_type(path, node, "a whole number of at least 0");
                None
            }
        }
    }

    /// A list of at most `max` items (more is reported and cut).
    pub fn list<'n>(&mut self, path: &str, node: &'n Node, max: usize) -> &'n [Node] {
        match &node.value {
            Value::Seq(items) => {
                if items.len() > max {
                    self.at(
                        codes::TOO_MANY_ENTRIES,
                        node,
                        format!(
                            "`{path}` has {} entries, at most {max} are allowed",
                            items.len()
                        ),
                    );
                    &items[..max]
                } else {
                    items
                }
            }
            _ => {
                self.wrong_type(path, node, "a list");
                &[]
            }
        }
    }

    /// A list of strings, as `(value, node)`.
    pub fn strings<'n>(
        &mut self,
        path: &str,
        node: &'n Node,
        max: usize,
    ) -> Vec<(String, &'n Node)> {
        let items = self.list(path, node, max);
        let mut out = Vec::new();
        for item in items {
            if let Some(s) = self.string(path, item) {
                out.push((s, item));
            }
        }
        out
    }

    /// An object's fields, to take one by one; what is left is unknown.
    pub fn object<'n>(&mut self, path: &str, node: &'n Node) -> Option<Fields<'n>> {
        match &node.value {
            Value::Map(entries) => Some(Fields {
                path: path.to_owned(),
                node,
                entries: entries.iter().map(|(k, v)| (k, v, false)).collect(),
            }),
            _ => {
                self.wrong_type(path, node, "an object");
                None
            }
        }
    }
}

/// The fields of one object being read.
pub(crate) struct Fields<'n> {
    path: String,
    node: &'n Node,
    entries: Vec<(&'n crate::doc::Key, &'n Node, bool)>,
}

impl<'n> Fields<'n> {
    /// The field `name`, if present (and not null).
    pub fn get(&mut self, name: &str) -> Option<&'n Node> {
        let entry = self.entries.iter_mut().find(|(k, _, _)| k.name == name)?;
        entry.2 = true;
        (entry.1.value != Value::Null).then_some(entry.1)
    }

    /// The field `name`, reported as missing when absent.
    pub fn require(&mut self, sink: &mut Sink, name: &str) -> Option<&'n Node> {
        let found = self.get(name);
        if found.is_none() {
            sink.at(
                codes::MISSING_FIELD,
                self.node,
                format!("`{}` is required", self.child(name)),
            );
        }
        found
    }

    pub fn child(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// Reports every field not taken.
    pub fn finish(self, sink: &mut Sink, known: &[&str]) {
        for (key, _, taken) in &self.entries {
            if !taken {
                let path = if self.path.is_empty() {
                    key.name.clone()
                } else {
                    format!("{}.{}", self.path, key.name)
                };
                sink.error(
                    codes::UNKNOWN_FIELD,
                    key.line,
                    key.column,
                    format!(
                        "unknown field `{path}` (expected one of: {})",
                        known.join(", ")
                    ),
                );
            }
        }
    }
}
