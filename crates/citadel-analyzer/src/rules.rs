//! The lint rules: one visitor over the parsed program.

use oxc::ast::ast::{
    ArrowFunctionExpression, AssignmentExpression, AwaitExpression, BreakStatement, CallExpression,
    DoWhileStatement, Expression, ForStatement, Function, IdentifierReference, ImportExpression,
    MemberExpression, NewExpression, Program, ReturnStatement, Statement, StringLiteral,
    TemplateLiteral, ThrowStatement, WhileStatement, WithStatement,
};
use oxc::ast_visit::{Visit, walk};
use oxc::span::Span;
use oxc::syntax::scope::ScopeFlags;

use crate::positions::LineIndex;
use crate::secrets;
use crate::{Diagnostic, RULES, Severity};

/// Built-ins whose prototypes a script must not change.
const BUILTINS: &[&str] = &[
    "Object",
    "Function",
    "Array",
    "String",
    "Number",
    "Boolean",
    "Symbol",
    "BigInt",
    "Promise",
    "RegExp",
    "Date",
    "Error",
    "TypeError",
    "RangeError",
    "SyntaxError",
    "Map",
    "Set",
    "WeakMap",
    "WeakSet",
    "JSON",
    "Math",
    "Reflect",
    "Proxy",
    "ArrayBuffer",
    "DataView",
    "Uint8Array",
    "Int8Array",
    "Uint16Array",
    "Int16Array",
    "Uint32Array",
    "Int32Array",
    "Float32Array",
    "Float64Array",
    "BigInt64Array",
    "BigUint64Array",
    "Iterator",
];

pub(crate) fn check(program: &Program<'_>, lines: &LineIndex<'_>, out: &mut Vec<Diagnostic>) {
    let mut v = Rules { lines, out };
    v.visit_program(program);
}

struct Rules<'l, 's> {
    lines: &'l LineIndex<'s>,
    out: &'l mut Vec<Diagnostic>,
}

impl Rules<'_, '_> {
    fn report(&mut self, rule: &'static str, span: Span, message: impl Into<String>) {
        let severity = RULES
            .iter()
            .find(|(id, _)| *id == rule)
            .map_or(Severity::Error, |r| r.1);
        let (line, column) = self.lines.user_position(span.start);
        self.out.push(Diagnostic {
            rule: rule.into(),
            severity,
            message: message.into(),
            line,
            column,
        });
    }

    fn check_string(&mut self, value: &str, span: Span) {
        if let Some(kind) = secrets::known_credential(value) {
            self.report(
                "hardcoded-credential",
                span,
                format!("string looks like a hard-coded {kind}; store it as a secret and read it with api.secrets.get"),
            );
        } else if secrets::is_high_entropy(value) {
            self.report(
                "high-entropy-string",
                span,
                "long high-entropy string literal may be a credential; store it as a secret",
            );
        }
    }

    fn check_loop(&mut self, span: Span, always_true: bool, body: &Statement<'_>) {
        if always_true && !LoopExit::search(body) {
            self.report(
                "no-unbounded-loop",
                span,
                "loop never ends: its condition is always true and its body has no break, return, throw or await",
            );
        }
    }
}

fn is_true(test: &Expression<'_>) -> bool {
    match test.without_parentheses() {
        Expression::BooleanLiteral(b) => b.value,
        Expression::NumericLiteral(n) => n.value != 0.0 && !n.value.is_nan(),
        _ => false,
    }
}

/// `X.prototype` where `X` is a built-in, or a `__proto__` member.
fn builtin_prototype(e: &Expression<'_>) -> Option<String> {
    let m = e.without_parentheses().as_member_expression()?;
    let prop = m.static_property_name()?;
    if prop == "__proto__" {
        return Some("__proto__".into());
    }
    if prop == "prototype"
        && let Expression::Identifier(id) = m.object().without_parentheses()
        && BUILTINS.contains(&id.name.as_str())
    {
        return Some(format!("{}.prototype", id.name));
    }
    None
}

/// Why an assignment to this member is a prototype mutation, if it is.
fn prototype_target(m: &MemberExpression<'_>) -> Option<String> {
    if m.static_property_name() == Some("__proto__") {
        return Some("__proto__".into());
    }
    // `Object.prototype = …` or `Object.prototype.x = …` / `Array.prototype[k] = …`
    let whole_is_builtin_proto = m.static_property_name() == Some("prototype")
        && matches!(m.object().without_parentheses(), Expression::Identifier(id) if BUILTINS.contains(&id.name.as_str()));
    if whole_is_builtin_proto {
        return Some("a built-in prototype".into());
    }
    builtin_prototype(m.object())
}

impl<'a> Visit<'a> for Rules<'_, '_> {
    fn visit_identifier_reference(&mut self, it: &IdentifierReference<'a>) {
        if it.name == "eval" {
            self.report(
                "no-eval",
                it.span,
                "`eval` runs arbitrary code and is not available in the sandbox",
            );
        }
    }

    fn visit_static_member_expression(&mut self, it: &oxc::ast::ast::StaticMemberExpression<'a>) {
        // `globalThis.eval`, `x.constructor.constructor`
        if it.property.name == "eval" {
            self.report(
                "no-eval",
                it.property.span,
                "`eval` runs arbitrary code and is not available in the sandbox",
            );
        }
        if it.property.name == "constructor"
            && let Some(inner) = it.object.without_parentheses().as_member_expression()
            && inner.static_property_name() == Some("constructor")
        {
            self.report(
                "no-new-function",
                it.span,
                "`constructor.constructor` reaches the Function constructor, which is not available in the sandbox",
            );
        }
        walk::walk_static_member_expression(self, it);
    }

    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        if it.callee.is_specific_id("Function") {
            self.report(
                "no-new-function",
                it.span,
                "`Function(...)` compiles code from strings and is not available",
            );
        }
        let callee = it.callee.without_parentheses();
        let is_define = callee.is_specific_member_access("Object", "defineProperty")
            || callee.is_specific_member_access("Object", "defineProperties")
            || callee.is_specific_member_access("Object", "setPrototypeOf")
            || callee.is_specific_member_access("Object", "assign")
            || callee.is_specific_member_access("Reflect", "defineProperty")
            || callee.is_specific_member_access("Reflect", "setPrototypeOf");
        if is_define
            && let Some(target) = it.arguments.first().and_then(|a| a.as_expression())
            && let Some(what) = builtin_prototype(target).or_else(|| {
                matches!(target.without_parentheses(), Expression::Identifier(id) if BUILTINS.contains(&id.name.as_str()))
                    .then(|| "a built-in".to_owned())
            })
        {
            self.report("no-prototype-mutation", it.span, format!("changes {what}; built-ins must not be modified"));
        }
        walk::walk_call_expression(self, it);
    }

    fn visit_new_expression(&mut self, it: &NewExpression<'a>) {
        if it.callee.is_specific_id("Function") {
            self.report(
                "no-new-function",
                it.span,
                "`new Function(...)` compiles code from strings and is not available",
            );
        }
        walk::walk_new_expression(self, it);
    }

    fn visit_with_statement(&mut self, it: &WithStatement<'a>) {
        self.report(
            "no-with",
            it.span,
            "`with` is not allowed: scripts run in strict mode",
        );
        walk::walk_with_statement(self, it);
    }

    fn visit_import_expression(&mut self, it: &ImportExpression<'a>) {
        self.report(
            "no-dynamic-import",
            it.span,
            "dynamic `import()` is not available: scripts cannot load modules",
        );
        walk::walk_import_expression(self, it);
    }

    fn visit_assignment_expression(&mut self, it: &AssignmentExpression<'a>) {
        if let Some(m) = it.left.as_member_expression()
            && let Some(what) = prototype_target(m)
        {
            self.report(
                "no-prototype-mutation",
                it.span,
                format!("assignment to {what}; built-ins must not be modified"),
            );
        }
        walk::walk_assignment_expression(self, it);
    }

    fn visit_while_statement(&mut self, it: &WhileStatement<'a>) {
        self.check_loop(it.span, is_true(&it.test), &it.body);
        walk::walk_while_statement(self, it);
    }

    fn visit_do_while_statement(&mut self, it: &DoWhileStatement<'a>) {
        self.check_loop(it.span, is_true(&it.test), &it.body);
        walk::walk_do_while_statement(self, it);
    }

    fn visit_for_statement(&mut self, it: &ForStatement<'a>) {
        self.check_loop(it.span, it.test.as_ref().is_none_or(is_true), &it.body);
        walk::walk_for_statement(self, it);
    }

    fn visit_string_literal(&mut self, it: &StringLiteral<'a>) {
        self.check_string(it.value.as_str(), it.span);
    }

    fn visit_template_literal(&mut self, it: &TemplateLiteral<'a>) {
        for q in &it.quasis {
            let text = q
                .value
                .cooked
                .as_ref()
                .map_or(q.value.raw.as_str(), |c| c.as_str());
            self.check_string(text, q.span);
        }
        walk::walk_template_literal(self, it);
    }
}

/// Looks for any way out of a loop body: `break` (that does not belong to a
/// nested loop or switch), `return`, `throw` or `await`. Nested functions do
/// not count: their statements do not leave this loop.
struct LoopExit {
    /// Depth of nested loops/switches, whose unlabeled `break` is their own.
    nested: u32,
    found: bool,
}

impl LoopExit {
    fn search(body: &Statement<'_>) -> bool {
        let mut v = LoopExit {
            nested: 0,
            found: false,
        };
        v.visit_statement(body);
        v.found
    }
}

impl<'a> Visit<'a> for LoopExit {
    fn visit_break_statement(&mut self, it: &BreakStatement<'a>) {
        if it.label.is_some() || self.nested == 0 {
            self.found = true;
        }
    }
    fn visit_return_statement(&mut self, _: &ReturnStatement<'a>) {
        self.found = true;
    }
    fn visit_throw_statement(&mut self, _: &ThrowStatement<'a>) {
        self.found = true;
    }
    fn visit_await_expression(&mut self, _: &AwaitExpression<'a>) {
        self.found = true;
    }
    fn visit_function(&mut self, _: &Function<'a>, _: ScopeFlags) {}
    fn visit_arrow_function_expression(&mut self, _: &ArrowFunctionExpression<'a>) {}
    fn visit_statement(&mut self, it: &Statement<'a>) {
        if self.found {
            return;
        }
        let nests = matches!(
            it,
            Statement::WhileStatement(_)
                | Statement::DoWhileStatement(_)
                | Statement::ForStatement(_)
                | Statement::ForInStatement(_)
                | Statement::ForOfStatement(_)
                | Statement::SwitchStatement(_)
        );
        self.nested += u32::from(nests);
        walk::walk_statement(self, it);
        self.nested -= u32::from(nests);
    }
}
