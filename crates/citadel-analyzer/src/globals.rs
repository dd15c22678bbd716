//! Which optional groups of built-in globals a script can reach.
//!
//! Every context the sandbox makes has the base objects of the language
//! (`Object`, `Array`, `Error`s, `Math`, `Symbol`, …) and what the prelude
//! needs (`JSON`, `Proxy`, `Promise`). The other built-ins come in groups
//! (`Date`, `RegExp`, `Map`/`Set`, typed arrays) that cost time to create,
//! so a context gets only the groups its script can reach. This module
//! decides which, from the program's free identifiers and a few syntactic
//! forms, and errs towards more: a name it does not know, `globalThis`, or
//! anything else it cannot follow gives the script every group.
//!
//! A group is reachable only through its own global names (`new Date()`,
//! `Map`), with one exception the engine adds: `String.prototype.match`,
//! `matchAll` and `search` build a `RegExp` from a string. So `RegExp` is
//! also included for a script that names those methods anywhere (as a
//! property, a destructured key or a string), that reads a property by a
//! computed key, or that uses reflection able to fetch a method by name.
//!
//! The web-standard globals (`URL`, `TextEncoder`, `crypto`, `Headers`, …)
//! come in groups too, with their names in [`group_of`]; the sandbox
//! installs each group (and the built-in groups it is made of) only when
//! its bit is set. So does `Intl`, which is also included for a script that
//! names a locale method (`toLocaleString`, `toLocaleDateString`,
//! `toLocaleTimeString`, `localeCompare`) as a property, a key or a string.

use oxc::ast::ast::{
    ComputedMemberExpression, Expression, IdentifierName, Program, PropertyKey, RegExpLiteral,
    StringLiteral,
};
use oxc::ast_visit::{Visit, walk};
use oxc::semantic::SemanticBuilder;

/// A set of optional built-in groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Globals(u32);

impl Globals {
    /// Only what every context has.
    pub const NONE: Globals = Globals(0);
    /// `Date`.
    pub const DATE: Globals = Globals(1 << 0);
    /// `RegExp`, regular expression literals and the string methods that
    /// make one from a string.
    pub const REGEXP: Globals = Globals(1 << 1);
    /// `Map`, `Set`, `WeakMap`, `WeakSet`.
    pub const MAP_SET: Globals = Globals(1 << 2);
    /// `ArrayBuffer`, `SharedArrayBuffer`, `DataView`, `Atomics` and the
    /// typed arrays.
    pub const TYPED_ARRAYS: Globals = Globals(1 << 3);
    /// `URL`, `URLSearchParams`.
    pub const URL: Globals = Globals(1 << 4);
    /// `TextEncoder`, `TextDecoder`, `atob`, `btoa`.
    pub const ENCODING: Globals = Globals(1 << 5);
    /// `crypto` (`getRandomValues`, `randomUUID`, `subtle`), `CryptoKey`.
    pub const CRYPTO: Globals = Globals(1 << 6);
    /// `Headers`, `Request`, `Response`, `Blob`, `FormData`, `fetch`.
    pub const FETCH: Globals = Globals(1 << 7);
    /// `Event`, `EventTarget`, `AbortController`, `AbortSignal`,
    /// `DOMException`.
    pub const EVENTS: Globals = Globals(1 << 8);
    /// `structuredClone`.
    pub const CLONE: Globals = Globals(1 << 9);
    /// `setTimeout`, `setInterval`, `clearTimeout`, `clearInterval`,
    /// `performance`.
    pub const TIMERS: Globals = Globals(1 << 10);
    /// `Intl`, and the locale methods that follow it
    /// (`toLocaleString`, `toLocaleDateString`, `toLocaleTimeString`,
    /// `localeCompare`, named anywhere as a property, a key or a string).
    /// A method reached by a computed key keeps the engine's own (the
    /// `Date` ones in en-US, in the run's zone).
    pub const INTL: Globals = Globals(1 << 11);
    /// The web-standard groups (installed by the web module).
    pub const WEB: Globals = Globals(((1 << 11) - 1) & !((1 << 4) - 1));
    /// Every group.
    pub const ALL: Globals = Globals((1 << 12) - 1);

    /// The set as bits (the sandbox's web module reads them).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Every group in `other` is in `self`.
    pub const fn contains(self, other: Globals) -> bool {
        self.0 & other.0 == other.0
    }

    /// Some group of `other` is in `self`.
    pub const fn intersects(self, other: Globals) -> bool {
        self.0 & other.0 != 0
    }

    #[must_use]
    pub const fn with(self, other: Globals) -> Globals {
        Globals(self.0 | other.0)
    }

    /// The groups' names, for diagnostics and tests.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Globals::DATE, "date"),
            (Globals::REGEXP, "regexp"),
            (Globals::MAP_SET, "map_set"),
            (Globals::TYPED_ARRAYS, "typed_arrays"),
            (Globals::URL, "url"),
            (Globals::ENCODING, "encoding"),
            (Globals::CRYPTO, "crypto"),
            (Globals::FETCH, "fetch"),
            (Globals::EVENTS, "events"),
            (Globals::CLONE, "clone"),
            (Globals::TIMERS, "timers"),
            (Globals::INTL, "intl"),
        ]
        .into_iter()
        .filter(|(g, _)| self.contains(*g))
        .map(|(_, name)| name)
        .collect()
    }
}

/// The global names every context has (the language's base objects, what
/// the prelude installs or needs, and names that are no globals at all).
const BASE: &[&str] = &[
    "AggregateError",
    "Array",
    "AsyncDisposableStack",
    "BigInt",
    "Boolean",
    "DisposableStack",
    "Error",
    "EvalError",
    "Function",
    "Infinity",
    "InternalError",
    "Iterator",
    "JSON",
    "Math",
    "NaN",
    "Number",
    "Object",
    "Promise",
    "Proxy",
    "RangeError",
    "ReferenceError",
    "String",
    "SuppressedError",
    "Symbol",
    "SyntaxError",
    "TypeError",
    "URIError",
    "arguments",
    "console",
    "decodeURI",
    "decodeURIComponent",
    "encodeURI",
    "encodeURIComponent",
    "escape",
    "eval",
    "isFinite",
    "isNaN",
    "parseFloat",
    "parseInt",
    "queueMicrotask",
    "undefined",
    "unescape",
];

/// The group a free identifier needs: `Some(NONE)` for a base name, `None`
/// for a name this module does not know (the caller then takes every group).
pub fn group_of(name: &str) -> Option<Globals> {
    Some(match name {
        "Date" => Globals::DATE,
        "RegExp" => Globals::REGEXP,
        // Reflection that fetches a property by a computed name.
        "Reflect" => Globals::REGEXP,
        "Map" | "Set" | "WeakMap" | "WeakSet" => Globals::MAP_SET,
        "ArrayBuffer" | "SharedArrayBuffer" | "DataView" | "Atomics" | "Int8Array"
        | "Uint8Array" | "Uint8ClampedArray" | "Int16Array" | "Uint16Array" | "Int32Array"
        | "Uint32Array" | "BigInt64Array" | "BigUint64Array" | "Float16Array" | "Float32Array"
        | "Float64Array" => Globals::TYPED_ARRAYS,
        "URL" | "URLSearchParams" => Globals::URL,
        "TextEncoder" | "TextDecoder" | "atob" | "btoa" => Globals::ENCODING,
        "crypto" | "CryptoKey" | "SubtleCrypto" | "Crypto" => Globals::CRYPTO,
        "Headers" | "Request" | "Response" | "Blob" | "File" | "FormData" | "fetch" => {
            Globals::FETCH
        }
        "Event" | "EventTarget" | "CustomEvent" | "AbortController" | "AbortSignal"
        | "DOMException" => Globals::EVENTS,
        "structuredClone" => Globals::CLONE,
        "Intl" => Globals::INTL,
        "setTimeout" | "setInterval" | "clearTimeout" | "clearInterval" | "performance" => {
            Globals::TIMERS
        }
        // Any global, by any name.
        "globalThis" => Globals::ALL,
        _ if BASE.binary_search(&name).is_ok() => Globals::NONE,
        _ => return None,
    })
}

/// Property names whose use may build a `RegExp` from a string, or fetch a
/// method by a name computed at run time.
const REGEXP_NAMES: &[&str] = &[
    "getOwnPropertyDescriptor",
    "getOwnPropertyDescriptors",
    "getOwnPropertyNames",
    "match",
    "matchAll",
    "search",
];

/// The groups a parsed program can reach (for TypeScript: the program after
/// its types were stripped).
pub(crate) fn reachable(program: &Program<'_>) -> Globals {
    let semantic = SemanticBuilder::new().build(program).semantic;
    let scoping = semantic.scoping();
    let mut globals = Globals::NONE;
    for (name, references) in scoping.root_unresolved_references() {
        let used_as_value = references
            .iter()
            .any(|&id| scoping.get_reference(id).flags().is_value());
        if !used_as_value {
            continue;
        }
        match group_of(name) {
            Some(group) => globals = globals.with(group),
            None => return Globals::ALL,
        }
    }
    if !globals.contains(Globals::REGEXP.with(Globals::INTL)) {
        let mut syntax = Syntax {
            regexp: false,
            intl: false,
        };
        syntax.visit_program(program);
        if syntax.regexp {
            globals = globals.with(Globals::REGEXP);
        }
        if syntax.intl {
            globals = globals.with(Globals::INTL);
        }
    }
    globals
}

/// Property names that reach `Intl`'s formatting.
const INTL_NAMES: &[&str] = &[
    "localeCompare",
    "toLocaleDateString",
    "toLocaleString",
    "toLocaleTimeString",
];

/// Finds the forms that need `RegExp` or `Intl` without naming them.
struct Syntax {
    regexp: bool,
    intl: bool,
}

fn is_literal_key(e: &Expression<'_>) -> bool {
    matches!(
        e.without_parentheses(),
        Expression::StringLiteral(_) | Expression::NumericLiteral(_)
    )
}

impl<'a> Visit<'a> for Syntax {
    fn visit_reg_exp_literal(&mut self, _: &RegExpLiteral<'a>) {
        self.regexp = true;
    }

    fn visit_identifier_name(&mut self, it: &IdentifierName<'a>) {
        self.regexp |= REGEXP_NAMES.contains(&it.name.as_str());
        self.intl |= INTL_NAMES.contains(&it.name.as_str());
    }

    fn visit_string_literal(&mut self, it: &StringLiteral<'a>) {
        self.regexp |= REGEXP_NAMES.contains(&it.value.as_str());
        self.intl |= INTL_NAMES.contains(&it.value.as_str());
    }

    fn visit_computed_member_expression(&mut self, it: &ComputedMemberExpression<'a>) {
        self.regexp |= !is_literal_key(&it.expression);
        walk::walk_computed_member_expression(self, it);
    }

    fn visit_property_key(&mut self, it: &PropertyKey<'a>) {
        if let Some(key) = it.as_expression() {
            self.regexp |= !is_literal_key(key);
        }
        walk::walk_property_key(self, it);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Language, prepare};

    fn groups(source: &str, language: Language) -> Vec<&'static str> {
        let prepared = prepare(source, language);
        let program = prepared.program.unwrap_or_else(|| {
            panic!("{source}: {:?}", prepared.diagnostics);
        });
        program.globals.names()
    }

    fn js(source: &str) -> Vec<&'static str> {
        groups(source, Language::Js)
    }

    #[test]
    fn a_script_gets_the_groups_it_names() {
        assert_eq!(js("return [1, 2, 3].map((x) => x * 2).length;"), [""; 0]);
        assert_eq!(
            js(
                "const r = JSON.parse(input); console.log(Math.max(1, 2)); return new Promise((ok) => ok(r));"
            ),
            [""; 0]
        );
        assert_eq!(js("return Date.now();"), ["date"]);
        assert_eq!(js("return new Map([[1, 2]]).size;"), ["map_set"]);
        assert_eq!(js("return new WeakSet();"), ["map_set"]);
        assert_eq!(js("return new Uint8Array(4).length;"), ["typed_arrays"]);
        assert_eq!(js("return Atomics;"), ["typed_arrays"]);
        assert_eq!(js("return /a+/.test(input);"), ["regexp"]);
        assert_eq!(js("return new RegExp(input);"), ["regexp"]);
        assert_eq!(
            js("const d = new Date(); const s = new Set(); return [d, s];"),
            ["date", "map_set"]
        );
    }

    #[test]
    fn web_globals_get_their_group_and_nothing_else() {
        assert_eq!(js("return new URL(input).host;"), ["url"]);
        assert_eq!(js("return btoa(atob(input));"), ["encoding"]);
        assert_eq!(js("return crypto.randomUUID();"), ["crypto"]);
        assert_eq!(js("return new Headers();"), ["fetch"]);
        assert_eq!(js("return await fetch(input);"), ["fetch"]);
        assert_eq!(js("return new AbortController();"), ["events"]);
        assert_eq!(js("return structuredClone(input);"), ["clone"]);
        assert_eq!(
            js("await new Promise((r) => setTimeout(r, 1)); return performance.now();"),
            ["timers"]
        );
        assert_eq!(
            js("return new Intl.NumberFormat('de-DE').format(input);"),
            ["intl"]
        );
        assert_eq!(js("return (1234.5).toLocaleString('de-DE');"), ["intl"]);
        assert_eq!(js("return 'a'.localeCompare('b');"), ["intl"]);
        assert_eq!(
            js("const { toLocaleDateString: f } = Date.prototype; return f;"),
            ["date", "intl"]
        );
        assert!(Globals::ALL.contains(Globals::WEB));
        assert!(!Globals::WEB.contains(Globals::INTL));
        assert!(!Globals::WEB.contains(Globals::DATE));
    }

    #[test]
    fn shadowed_names_are_the_scripts_own() {
        assert_eq!(js("const Date = 1; return Date;"), [""; 0]);
        assert_eq!(
            js("function f(Map) { return new Map(); } return f;"),
            [""; 0]
        );
    }

    #[test]
    fn what_it_cannot_follow_gets_every_group() {
        let all = Globals::ALL.names();
        assert_eq!(js("return globalThis[input];"), all);
        assert_eq!(js("return globalThis.Date;"), all);
        assert_eq!(js("return notDefinedAnywhere;"), all);
        assert_eq!(js("return typeof WeakRef;"), all);
    }

    #[test]
    fn string_methods_that_make_a_regexp_get_regexp() {
        assert_eq!(js("return 'abc'.match('b');"), ["regexp"]);
        assert_eq!(js("return [...'abc'.matchAll('b')];"), ["regexp"]);
        assert_eq!(js("return 'abc'.search('b');"), ["regexp"]);
        assert_eq!(
            js("const { match } = String.prototype; return match;"),
            ["regexp"]
        );
        assert_eq!(js("return String.prototype['match'];"), ["regexp"]);
        assert_eq!(js("const k = input; return 'abc'[k]('b');"), ["regexp"]);
        assert_eq!(
            js("const { [input]: f } = String.prototype; return f;"),
            ["regexp"]
        );
        assert_eq!(
            js("return Reflect.get(String.prototype, input);"),
            ["regexp"]
        );
        assert_eq!(
            js("return Object.getOwnPropertyDescriptors(String.prototype);"),
            ["regexp"]
        );
        // Literal keys and other string methods make none.
        assert_eq!(
            js("return [input[0], input['a'], 'a,b'.split(','), 'a'.replace('a', 'b')];"),
            [""; 0]
        );
    }

    #[test]
    fn typescript_types_are_no_values() {
        assert_eq!(
            groups(
                "const d: Date | undefined = undefined; const m: Map<string, number> | null = null; return [d, m];",
                Language::Ts
            ),
            [""; 0]
        );
        assert_eq!(
            groups("const d: Date = new Date(); return d;", Language::Ts),
            ["date"]
        );
    }

    #[test]
    fn the_base_names_are_sorted_for_the_binary_search() {
        assert!(BASE.windows(2).all(|w| w[0] < w[1]));
    }
}
