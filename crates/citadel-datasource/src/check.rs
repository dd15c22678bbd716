//! The first layer: the statement is parsed (sqlparser, in the source's own
//! dialect) and must be exactly one read-only query — a `SELECT`, `VALUES`,
//! `TABLE` or `WITH … SELECT` — with no data-modifying CTE, no `INTO`, no
//! locking clause, and no call to a function with side effects (sleeping,
//! files, large objects, sequences, settings, advisory locks, notifications,
//! other connections, extensions) anywhere in its tree.
//!
//! The parser is not the defence that matters: a parser can disagree with
//! the database about what a string means, and a tenant's own functions or
//! views may write. The read-only connection ([`crate::query`]) is the real
//! one. This layer answers early, with a reason a script author can act on,
//! and keeps the obvious out of the database's logs.
//!
//! Functions are matched by the last part of their name, case-insensitively
//! (so `pg_catalog.pg_sleep` and `"PG_SLEEP"` are both refused: refusing a
//! same-named harmless function is the cheaper mistake). PostgreSQL's
//! `pg_*` functions are server administration, so all of them are refused
//! except a short list of informational ones ([`ALLOWED_PG_FUNCTIONS`]).
//!
//! Catalogs: reading one's own schema (`information_schema`, `pg_tables`,
//! `sqlite_master`) is allowed — the tenant owns that database. Relations
//! that show server-wide or other sessions' state, or credentials, are
//! refused by name ([`DENIED_RELATIONS`]); an administrator should still
//! give the data source a role that cannot read them.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, ObjectName, ObjectNamePart, Query, Select, SetExpr, Statement, TableFactor, Value,
    ValueWithSpan, Visit, Visitor,
};
use sqlparser::dialect::{Dialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

use crate::{Kind, QueryError};

/// Functions refused in every dialect, by exact (lower-case) name.
pub const DENIED_FUNCTIONS: &[&str] = &[
    // Sequences: they write even in a read-only transaction's spirit.
    "nextval",
    "setval",
    "currval",
    "lastval",
    // Settings: reading them can reveal configuration, writing changes the session.
    "set_config",
    "current_setting",
    // Files and programs.
    "copy",
    "load_extension",
    "readfile",
    "writefile",
    "edit",
    "fts3_tokenizer",
    "fts5",
    "zipfile",
    "sqlar_compress",
    "sqlar_uncompress",
    "sleep",
    // Run an arbitrary SQL string, past this check.
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "query_to_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "table_to_xml",
    "table_to_xml_and_xmlschema",
    "table_to_xmlschema",
    "schema_to_xml",
    "schema_to_xml_and_xmlschema",
    "schema_to_xmlschema",
    "database_to_xml",
    "database_to_xml_and_xmlschema",
    "database_to_xmlschema",
];

/// Functions refused by prefix: large objects (`lo_import`, `lo_export`,
/// …), other connections (`dblink*`), transaction ids (`txid_*`), and the
/// `pg_` administration functions not in [`ALLOWED_PG_FUNCTIONS`].
pub const DENIED_FUNCTION_PREFIXES: &[&str] = &["lo_", "dblink", "txid_", "pg_"];

/// The `pg_*` functions that only inform: sizes, types, definitions,
/// visibility.
pub const ALLOWED_PG_FUNCTIONS: &[&str] = &[
    "pg_typeof",
    "pg_column_size",
    "pg_size_pretty",
    "pg_size_bytes",
    "pg_relation_size",
    "pg_total_relation_size",
    "pg_table_size",
    "pg_indexes_size",
    "pg_get_viewdef",
    "pg_get_indexdef",
    "pg_get_constraintdef",
    "pg_get_expr",
    "pg_get_serial_sequence",
    "pg_get_userbyid",
    "pg_table_is_visible",
    "pg_type_is_visible",
    "pg_function_is_visible",
    "pg_input_is_valid",
    "pg_encoding_to_char",
];

/// Relations refused by (last-part) name: credentials, server
/// configuration, other sessions' activity, raw pages and files.
pub const DENIED_RELATIONS: &[&str] = &[
    "pg_authid",
    "pg_shadow",
    "pg_user_mapping",
    "pg_user_mappings",
    "pg_auth_members",
    "pg_hba_file_rules",
    "pg_ident_file_mappings",
    "pg_file_settings",
    "pg_settings",
    "pg_db_role_setting",
    "pg_stat_activity",
    "pg_stat_statements",
    "pg_locks",
    "pg_largeobject",
    "pg_largeobject_metadata",
    "pg_replication_slots",
    "pg_stat_replication",
    "sqlite_dbpage",
    "sqlite_dbdata",
    "sqlite_dbptr",
    "pragma_database_list",
    "fsdir",
    "zipfile",
];

/// What the check learnt of an accepted statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checked {
    /// How many parameters the statement takes: the highest placeholder
    /// number.
    pub params: usize,
}

/// Checks that `sql` is exactly one read-only query in `kind`'s dialect;
/// otherwise [`QueryError::StatementRefused`] with the reason (a parse
/// failure gives the parser's message), or [`QueryError::InvalidParams`]
/// for a placeholder of the wrong style (`?`/`?N` for SQLite, `$N` for
/// PostgreSQL; named placeholders are refused).
pub fn check_statement(sql: &str, kind: Kind) -> Result<(), QueryError> {
    check(sql, kind).map(|_| ())
}

/// The longest statement accepted, in bytes: a query a script writes by
/// hand is far shorter, and parsing is work done before any limit applies.
pub const MAX_SQL_BYTES: usize = 64 * 1024;

pub(crate) fn check(sql: &str, kind: Kind) -> Result<Checked, QueryError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(QueryError::refused(format!(
            "the statement is {} bytes long, more than {MAX_SQL_BYTES}",
            sql.len()
        )));
    }
    let dialect: &dyn Dialect = match kind {
        Kind::Sqlite => &SQLiteDialect {},
        Kind::Postgres => &PostgreSqlDialect {},
    };
    let statements = Parser::parse_sql(dialect, sql).map_err(|e| {
        let hint = if kind == Kind::Postgres && sql.contains('?') {
            " (PostgreSQL placeholders are $1, $2, …)"
        } else {
            ""
        };
        QueryError::refused(format!("does not parse: {e}{hint}"))
    })?;
    let statement = match statements.as_slice() {
        [] => return Err(QueryError::refused("no statement")),
        [one] => one,
        _ => {
            return Err(QueryError::refused(format!(
                "{} statements: exactly one query is allowed",
                statements.len()
            )));
        }
    };
    if !matches!(statement, Statement::Query(_)) {
        return Err(QueryError::refused(format!(
            "only a query (SELECT, VALUES, WITH … SELECT) is allowed, not {}",
            statement_kind(statement)
        )));
    }
    let mut walker = Walker {
        kind,
        top: true,
        anonymous: 0,
        max: 0,
    };
    if let ControlFlow::Break(e) = statement.visit(&mut walker) {
        return Err(e);
    }
    Ok(Checked {
        params: walker.max.max(walker.anonymous),
    })
}

/// The statement's first keywords, for the refusal's reason.
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    let first = words.first().copied().unwrap_or("?").to_ascii_uppercase();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" | "EXPLAIN" => {
            let second = words.get(1).copied().unwrap_or("").to_ascii_uppercase();
            format!("{first} {second}").trim_end().to_owned()
        }
        _ => first,
    }
}

struct Walker {
    kind: Kind,
    /// Whether the next statement seen is the top-level one.
    top: bool,
    /// SQLite: the number a bare `?` would take next, minus one.
    anonymous: usize,
    /// The highest placeholder number seen.
    max: usize,
}

fn last_part(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(ident)) => ident.value.to_lowercase(),
        Some(ObjectNamePart::Function(f)) => f.name.value.to_lowercase(),
        None => String::new(),
    }
}

fn denied_function(name: &str) -> bool {
    if DENIED_FUNCTIONS.contains(&name) {
        return true;
    }
    DENIED_FUNCTION_PREFIXES.iter().any(|p| name.starts_with(p))
        && !ALLOWED_PG_FUNCTIONS.contains(&name)
}

fn check_function(name: &ObjectName) -> ControlFlow<QueryError> {
    let last = last_part(name);
    if denied_function(&last) {
        return ControlFlow::Break(QueryError::refused(format!(
            "function `{name}` is not allowed (it has side effects or reaches outside the query)"
        )));
    }
    ControlFlow::Continue(())
}

impl Visitor for Walker {
    type Break = QueryError;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<QueryError> {
        if std::mem::take(&mut self.top) {
            return ControlFlow::Continue(());
        }
        ControlFlow::Break(QueryError::refused(format!(
            "a nested {} is not allowed (data-modifying CTE or subquery)",
            statement_kind(statement)
        )))
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<QueryError> {
        if !query.locks.is_empty() {
            return ControlFlow::Break(QueryError::refused(
                "locking clauses (FOR UPDATE / FOR SHARE) are not allowed",
            ));
        }
        if query.for_clause.is_some() {
            return ControlFlow::Break(QueryError::refused("FOR XML / FOR JSON is not allowed"));
        }
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                if let Some(kind) = modifying(&cte.query.body) {
                    return ControlFlow::Break(QueryError::refused(format!(
                        "a data-modifying CTE (`{}` is {kind}) is not allowed",
                        cte.alias.name
                    )));
                }
            }
        }
        if let Some(kind) = modifying(&query.body) {
            return ControlFlow::Break(QueryError::refused(format!(
                "a nested {kind} is not allowed"
            )));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<QueryError> {
        if select.into.is_some() {
            return ControlFlow::Break(QueryError::refused(
                "SELECT … INTO creates a table and is not allowed",
            ));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<QueryError> {
        let last = last_part(relation);
        if DENIED_RELATIONS.contains(&last.as_str()) {
            return ControlFlow::Break(QueryError::refused(format!(
                "relation `{relation}` is not allowed (server-wide or credential data)"
            )));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<QueryError> {
        match factor {
            // A table-valued function (`FROM pg_ls_dir('/')`).
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => check_function(name),
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<QueryError> {
        if let Expr::Function(f) = expr {
            check_function(&f.name)?;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_value(&mut self, value: &ValueWithSpan) -> ControlFlow<QueryError> {
        if let Value::Placeholder(p) = &value.value {
            self.placeholder(p)?;
        }
        ControlFlow::Continue(())
    }
}

impl Walker {
    fn placeholder(&mut self, p: &str) -> ControlFlow<QueryError> {
        let bad = |reason: String| ControlFlow::Break(QueryError::params(reason));
        match self.kind {
            Kind::Sqlite => {
                if p == "?" {
                    // SQLite gives a bare `?` one more than the largest number so far.
                    self.anonymous = self.max.max(self.anonymous) + 1;
                    self.max = self.max.max(self.anonymous);
                    return ControlFlow::Continue(());
                }
                match p.strip_prefix('?').and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) if n >= 1 => {
                        self.max = self.max.max(n);
                        ControlFlow::Continue(())
                    }
                    _ => bad(format!(
                        "placeholder `{p}`: SQLite statements take `?` or `?1`, `?2`, …"
                    )),
                }
            }
            Kind::Postgres => match p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
                Some(n) if n >= 1 => {
                    self.max = self.max.max(n);
                    ControlFlow::Continue(())
                }
                _ => bad(format!(
                    "placeholder `{p}`: PostgreSQL statements take `$1`, `$2`, …"
                )),
            },
        }
    }
}

/// What a query body does besides reading, if anything.
fn modifying(body: &SetExpr) -> Option<&'static str> {
    match body {
        SetExpr::Insert(_) => Some("an INSERT"),
        SetExpr::Update(_) => Some("an UPDATE"),
        SetExpr::Delete(_) => Some("a DELETE"),
        SetExpr::Merge(_) => Some("a MERGE"),
        SetExpr::SetOperation { left, right, .. } => modifying(left).or_else(|| modifying(right)),
        SetExpr::Query(q) => modifying(&q.body),
        SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Table(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_counted() {
        let n = |sql, kind| check(sql, kind).unwrap().params;
        assert_eq!(n("SELECT 1", Kind::Sqlite), 0);
        assert_eq!(n("SELECT ?, ?", Kind::Sqlite), 2);
        assert_eq!(n("SELECT ?2, ?", Kind::Sqlite), 3);
        assert_eq!(n("SELECT ?1, ?1", Kind::Sqlite), 1);
        assert_eq!(n("SELECT $2, $1", Kind::Postgres), 2);
    }

    #[test]
    fn long_or_deep_statements_are_refused() {
        let long = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
        assert_eq!(
            check(&long, Kind::Sqlite).unwrap_err().code(),
            "statement_refused"
        );
        // The parser's own recursion limit, not a stack overflow.
        let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(
            check(&deep, Kind::Postgres).unwrap_err().code(),
            "statement_refused"
        );
        let deep = format!("SELECT {}1", "- ".repeat(10000));
        assert_eq!(
            check(&deep, Kind::Sqlite).unwrap_err().code(),
            "statement_refused"
        );
    }

    #[test]
    fn wrong_placeholder_style_is_invalid_params() {
        // PostgreSQL's parser refuses a `?` outright, with a hint.
        let e = check("SELECT ?", Kind::Postgres).unwrap_err();
        assert_eq!(e.code(), "statement_refused");
        assert!(e.to_string().contains("$1"), "{e}");
        assert_eq!(
            check("SELECT :name", Kind::Sqlite).unwrap_err().code(),
            "invalid_params"
        );
    }
}
