//! A linear pre-scan that bounds how deeply a source nests before anything
//! recursive (the parser, the TypeScript transform, codegen, the rule
//! visitor, QuickJS's compiler) sees it. Each of those recurses once per level
//! of the syntax tree, so a few KB of `((((…` or `x=>x=>…` would otherwise
//! overflow the stack of whichever thread analyses the script.
//!
//! The scan is a tokenizer-lite over the script body. It tracks two
//! measures and refuses the source when either passes its limit:
//!
//! - **nesting**: open brackets, braces, parentheses, template literals and
//!   their `${…}`, and (TypeScript) `<…>` type arguments;
//! - **depth**: the nesting plus, in every open group, the operators,
//!   keywords and closed groups chained since that group's last `,` or `;`
//!   (or the newline that ends a statement). Every tree level without a
//!   bracket of its own — `!!!x`, `a.b.c`, `f()()`, `x=>y=>z`, `if (a) if (b)`,
//!   `T[][]` — has such a token, so the depth bounds the tree's depth.
//!
//! The count must never be lower than what the parser sees, so wherever the
//! scan cannot tell a regular expression from a division the way the parser
//! would (`/` right after `}`, `yield`, `await`, `let` or `of`) it refuses the
//! source rather than guess; and from a token the parser only recovers from
//! (an unterminated string or regular expression, an invalid escape or
//! character) it trusts no reading of the rest (see `Scan::unreadable`).

/// The most brackets, braces, parentheses, template literals and type
/// argument lists a script may nest.
pub const MAX_NESTING: u32 = 128;

/// The deepest a script's syntax may nest, counting chained operators and
/// keywords as well as brackets (see the module documentation).
pub const MAX_DEPTH: u32 = 1024;

/// Where and why a source nests too deeply, as a byte offset in the scanned
/// text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TooDeep {
    pub offset: u32,
    pub message: String,
    /// The source cannot be tokenized from `offset` on (an unterminated
    /// literal, an invalid character): a syntax error, reported as such.
    pub syntax: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `(`; `control` when it holds the head of `if`/`while`/`for`/`with`,
    /// after which a `/` starts a regular expression.
    Paren {
        control: bool,
    },
    Bracket,
    Brace,
    /// Inside a template literal's text.
    Template,
    /// `${` … `}` inside a template literal.
    Substitution,
    /// TypeScript `<` that may open type arguments or parameters.
    Angle,
}

struct Frame {
    kind: Kind,
    /// Operators, keywords and closed groups since the last `,` or `;`.
    chain: u32,
}

/// What the previous token lets a `/` be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slash {
    /// A regular expression starts here (after an operator, `(`, `,`, …).
    Regex,
    /// A division (after an operand).
    Divide,
    /// Only the parser's grammar knows; the scan refuses the source.
    Ambiguous,
}

struct Scan<'s> {
    text: &'s [u8],
    at: usize,
    ts: bool,
    stack: Vec<Frame>,
    /// The sum over open frames of `1 + chain`.
    depth: u32,
    slash: Slash,
    /// The previous token ended an expression, so a newline followed by a
    /// word or literal ends the statement (automatic semicolon insertion).
    ends_expression: bool,
    /// The previous token was `.` or `?.`: a keyword after it is a name.
    after_dot: bool,
    /// `if`/`while`/`for`/`with` (and `for await`) were just seen: the next
    /// `(` holds a statement head.
    control_pending: bool,
    /// A line terminator since the previous token.
    newline: bool,
}

/// Checks that `text` nests no deeper than [`MAX_NESTING`] and [`MAX_DEPTH`].
pub(crate) fn check(text: &str, ts: bool) -> Result<(), TooDeep> {
    let mut scan = Scan {
        text: text.as_bytes(),
        at: 0,
        ts,
        stack: vec![Frame {
            kind: Kind::Brace,
            chain: 0,
        }],
        depth: 1,
        slash: Slash::Regex,
        ends_expression: false,
        after_dot: false,
        control_pending: false,
        newline: false,
    };
    scan.run()
}

const RESERVED: &[&str] = &[
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "return",
    "switch",
    "throw",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
];

/// Words that are operands, after which `/` divides.
const OPERAND_KEYWORDS: &[&str] = &["this", "super", "null", "true", "false"];

/// Contextual words the parser may read as an operator or a keyword that
/// takes an operand: counted as chain links (overcounting an identifier of
/// that name is harmless).
const CONTEXTUAL: &[&str] = &[
    "as",
    "satisfies",
    "keyof",
    "infer",
    "is",
    "asserts",
    "readonly",
    "unique",
    "async",
    "implements",
    "static",
    "get",
    "set",
    "declare",
    "abstract",
    "accessor",
    "override",
];

/// Contextual words after which the parser may read `/` either way.
const SLASH_AMBIGUOUS: &[&str] = &["yield", "await", "let", "of"];

/// Words that continue the statement before a newline, so no semicolon is
/// inserted before them.
const CONTINUATIONS: &[&str] = &[
    "in",
    "instanceof",
    "of",
    "as",
    "satisfies",
    "else",
    "catch",
    "finally",
    "extends",
    "implements",
    "is",
];

impl Scan<'_> {
    fn run(&mut self) -> Result<(), TooDeep> {
        while self.at < self.text.len() {
            if matches!(self.top().kind, Kind::Template) {
                self.template_text()?;
                continue;
            }
            let start = self.at;
            let b = self.text[self.at];
            match b {
                b'\n' | b'\r' => {
                    self.newline = true;
                    self.at += 1;
                }
                b' ' | b'\t' | 0x0b | 0x0c => self.at += 1,
                b'/' => self.slash(start)?,
                b'\'' | b'"' => {
                    self.before_operand();
                    if !self.string(b) {
                        self.unreadable(start, "unterminated string literal")?;
                    }
                    self.operand();
                }
                b'`' => {
                    // No statement ends before a template: `tag\n`…`` is a call.
                    self.newline = false;
                    self.at += 1;
                    self.push(Kind::Template, start)?;
                }
                b'(' => {
                    let control = self.control_pending;
                    self.at += 1;
                    self.push(Kind::Paren { control }, start)?;
                    self.operator_state();
                }
                b'[' => {
                    self.at += 1;
                    self.push(Kind::Bracket, start)?;
                    self.operator_state();
                }
                b'{' => {
                    self.at += 1;
                    self.push(Kind::Brace, start)?;
                    self.operator_state();
                }
                b')' | b']' | b'}' => self.close(b, start)?,
                b',' => {
                    self.at += 1;
                    self.reset_chain();
                    self.operator_state();
                }
                b';' => {
                    self.at += 1;
                    self.pop_angles();
                    self.reset_chain();
                    self.operator_state();
                }
                b'0'..=b'9' => {
                    self.before_operand();
                    self.number();
                    self.operand();
                }
                b'.' if self.text.get(self.at + 1).is_some_and(u8::is_ascii_digit) => {
                    self.before_operand();
                    self.number();
                    self.operand();
                }
                b'.' => {
                    let len = if self.text[self.at..].starts_with(b"...") {
                        3
                    } else {
                        1
                    };
                    self.at += len;
                    self.link(start)?;
                    self.operator_state();
                    self.after_dot = len == 1;
                }
                b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' | b'\\' | b'#' => self.word(start)?,
                0x80.. => {
                    let (c, len) = self.char_at(self.at);
                    if is_line_terminator(c) {
                        self.newline = true;
                        self.at += len;
                    } else if is_space(c) {
                        self.at += len;
                    } else if is_name_char(c) {
                        self.word(start)?;
                    } else {
                        self.unreadable(start, "invalid character")?;
                    }
                }
                0x00..=0x08 | 0x0e..=0x1f | 0x7f => self.unreadable(start, "invalid character")?,
                _ => self.punctuator(start)?,
            }
        }
        Ok(())
    }

    fn top(&mut self) -> &mut Frame {
        // The bottom frame is never popped (closers without an opener are
        // ignored), so the stack is never empty.
        let last = self.stack.len() - 1;
        &mut self.stack[last]
    }

    /// The character at `at` and its length in bytes; a byte that does not
    /// start a character counts as one unknown character.
    fn char_at(&self, at: usize) -> (char, usize) {
        let len = match self.text[at] {
            0..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0.. => 4,
            _ => return ('\u{fffd}', 1),
        };
        let end = (at + len).min(self.text.len());
        std::str::from_utf8(&self.text[at..end])
            .ok()
            .and_then(|s| s.chars().next())
            .map_or(('\u{fffd}', 1), |c| (c, len))
    }

    fn too_deep(&self, offset: usize) -> Result<(), TooDeep> {
        // The bottom frame stands for the top level, not a nesting.
        let nesting = self.stack.len() as u32 - 1;
        if nesting > MAX_NESTING {
            return Err(TooDeep {
                offset: offset as u32,
                message: format!(
                    "brackets, braces, parentheses, template literals or type arguments nest more than {MAX_NESTING} levels deep"
                ),
                syntax: false,
            });
        }
        if self.depth > MAX_DEPTH {
            return Err(TooDeep {
                offset: offset as u32,
                message: format!(
                    "the code nests more than {MAX_DEPTH} levels deep (nested or chained expressions, statements or types); split it up"
                ),
                syntax: false,
            });
        }
        Ok(())
    }

    fn push(&mut self, kind: Kind, offset: usize) -> Result<(), TooDeep> {
        self.stack.push(Frame { kind, chain: 0 });
        self.depth += 1;
        self.control_pending = false;
        self.newline = false;
        self.too_deep(offset)
    }

    /// One more operator, keyword or closed group in the current group.
    fn link(&mut self, offset: usize) -> Result<(), TooDeep> {
        self.top().chain += 1;
        self.depth += 1;
        self.newline = false;
        self.too_deep(offset)
    }

    fn reset_chain(&mut self) {
        let chain = std::mem::take(&mut self.top().chain);
        self.depth -= chain;
        self.newline = false;
        self.control_pending = false;
    }

    fn pop(&mut self) -> Kind {
        let frame = self.stack.pop().expect("never pops the bottom frame");
        self.depth -= 1 + frame.chain;
        frame.kind
    }

    /// `<` that turned out to be comparisons end at a statement's end.
    fn pop_angles(&mut self) {
        while self.stack.len() > 1 && self.top().kind == Kind::Angle {
            self.pop();
        }
    }

    fn operator_state(&mut self) {
        self.slash = Slash::Regex;
        self.ends_expression = false;
        self.after_dot = false;
        self.control_pending = false;
    }

    fn operand(&mut self) {
        self.slash = Slash::Divide;
        self.ends_expression = true;
        self.after_dot = false;
        self.control_pending = false;
        self.newline = false;
    }

    /// An operand after a newline that follows a finished expression starts
    /// a new statement.
    fn before_operand(&mut self) {
        if self.newline && self.ends_expression {
            self.pop_angles();
            self.reset_chain();
        }
        self.newline = false;
    }

    fn close(&mut self, b: u8, offset: usize) -> Result<(), TooDeep> {
        self.at += 1;
        let wanted = |k: Kind| match b {
            b')' => matches!(k, Kind::Paren { .. }),
            b']' => k == Kind::Bracket,
            _ => matches!(k, Kind::Brace | Kind::Substitution),
        };
        // A closer pops what it matches and any unclosed `<` above it;
        // without a match (a syntax error) it is ignored.
        let Some(found) = self.stack[1..].iter().rposition(|f| wanted(f.kind)) else {
            self.operand();
            return Ok(());
        };
        let mut kind = self.pop();
        while self.stack.len() > found + 1 {
            kind = self.pop();
        }
        match kind {
            Kind::Substitution => {
                // Back in the template's text.
                self.newline = false;
                return Ok(());
            }
            // A statement head and a brace group are children of the
            // statement or expression whose keyword or operator already
            // counted; any group or operator chained after them counts itself.
            Kind::Paren { control: true } => {
                self.operator_state();
                self.newline = false;
            }
            Kind::Brace => {
                self.operand();
                // `{…} /x/` is a block then a regular expression, `({…}) / x` a
                // division: only the grammar knows.
                self.slash = Slash::Ambiguous;
            }
            _ => {
                self.link(offset)?;
                self.operand();
            }
        }
        Ok(())
    }

    fn template_text(&mut self) -> Result<(), TooDeep> {
        while self.at < self.text.len() {
            match self.text[self.at] {
                b'\\' => self.at += 2,
                b'`' => {
                    let offset = self.at;
                    self.at += 1;
                    self.pop();
                    self.link(offset)?;
                    self.operand();
                    return Ok(());
                }
                b'$' if self.text.get(self.at + 1) == Some(&b'{') => {
                    let offset = self.at;
                    self.at += 2;
                    self.push(Kind::Substitution, offset)?;
                    self.operator_state();
                    return Ok(());
                }
                _ => self.at += 1,
            }
        }
        Ok(())
    }

    /// Skips a string literal; false when it is unterminated.
    fn string(&mut self, quote: u8) -> bool {
        self.at += 1;
        while self.at < self.text.len() {
            match self.text[self.at] {
                b'\\' => {
                    self.at += 1;
                    // `\` CR LF continues the string over both bytes.
                    if self.text[self.at..].starts_with(b"\r\n") {
                        self.at += 1;
                    }
                    self.at += 1;
                }
                b'\n' | b'\r' => return false,
                c if c == quote => {
                    self.at += 1;
                    return true;
                }
                _ => self.at += 1,
            }
        }
        false
    }

    fn number(&mut self) {
        while self.at < self.text.len()
            && matches!(self.text[self.at], b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'.')
        {
            // `1.e5` and `1.5` are one token; `1..x` is `1.` then `.x`.
            if self.text[self.at] == b'.' && self.text.get(self.at + 1) == Some(&b'.') {
                self.at += 1;
                return;
            }
            self.at += 1;
        }
    }

    fn slash(&mut self, start: usize) -> Result<(), TooDeep> {
        match self.text.get(self.at + 1) {
            Some(b'/') => {
                self.at += 2;
                self.line_comment();
                return Ok(());
            }
            Some(b'*') => {
                self.at += 2;
                while self.at < self.text.len() && !self.text[self.at..].starts_with(b"*/") {
                    let (c, len) = self.char_at(self.at);
                    if is_line_terminator(c) {
                        self.newline = true;
                    }
                    self.at += len;
                }
                self.at = (self.at + 2).min(self.text.len());
                return Ok(());
            }
            _ => {}
        }
        match self.slash {
            Slash::Regex => {
                self.before_operand();
                if !self.regex() {
                    return self.unreadable(start, "unterminated regular expression");
                }
                self.operand();
                Ok(())
            }
            Slash::Divide => {
                self.at += 1;
                if self.text.get(self.at) == Some(&b'=') {
                    self.at += 1;
                }
                self.link(start)?;
                self.operator_state();
                Ok(())
            }
            Slash::Ambiguous => Err(TooDeep {
                offset: start as u32,
                message: "this `/` could be a division or start a regular expression; \
                          put the expression before it in parentheses or end the statement with `;`"
                    .into(),
                syntax: false,
            }),
        }
    }

    /// Skips a regular expression literal; false when it is unterminated.
    fn regex(&mut self) -> bool {
        self.at += 1;
        let mut class = false;
        loop {
            if self.at >= self.text.len() {
                return false;
            }
            let (c, len) = self.char_at(self.at);
            if is_line_terminator(c) {
                return false;
            }
            self.at += len;
            match c {
                '\\' => {
                    if self.at >= self.text.len() {
                        return false;
                    }
                    let (next, len) = self.char_at(self.at);
                    if is_line_terminator(next) {
                        return false;
                    }
                    self.at += len;
                }
                '[' => class = true,
                ']' => class = false,
                '/' if !class => break,
                _ => {}
            }
        }
        // Flags.
        while self.at < self.text.len() && is_word_byte(self.text[self.at]) {
            self.at += 1;
        }
        true
    }

    fn word(&mut self, start: usize) -> Result<(), TooDeep> {
        if self.text[start] == b'#'
            && !self
                .text
                .get(start + 1)
                .is_some_and(|b| is_word_byte(*b) || *b == b'\\' || *b >= 0x80)
        {
            return self.unreadable(start, "invalid character `#`");
        }
        if self.text[start] != b'\\' {
            let (_, len) = self.char_at(start);
            self.at += len;
        }
        while self.at < self.text.len() {
            let b = self.text[self.at];
            if b == b'\\' {
                // Only `\u` escapes belong in a name; the parser recovers
                // from any other `\` in ways the scan cannot follow.
                if self.text.get(self.at + 1) != Some(&b'u') {
                    return self.unreadable(self.at, "invalid escape `\\` outside a string");
                }
                if self.text.get(self.at + 2) == Some(&b'{') {
                    // `\u{…}` escapes a character of the name.
                    while self.at < self.text.len() && self.text[self.at] != b'}' {
                        self.at += 1;
                    }
                    self.at = (self.at + 1).min(self.text.len());
                } else {
                    self.at += 2;
                }
            } else if is_word_byte(b) {
                self.at += 1;
            } else if b >= 0x80 {
                let (c, len) = self.char_at(self.at);
                if is_line_terminator(c) || is_space(c) {
                    break;
                }
                if !is_name_char(c) {
                    return self.unreadable(self.at, "invalid character");
                }
                self.at += len;
            } else {
                break;
            }
        }
        let word = std::str::from_utf8(&self.text[start..self.at]).unwrap_or("");
        if self.after_dot {
            // A property name, whatever it spells.
            self.operand();
            return Ok(());
        }
        let continues = CONTINUATIONS.contains(&word);
        if !continues {
            self.before_operand();
        }
        self.newline = false;
        if OPERAND_KEYWORDS.contains(&word) {
            self.operand();
        } else if RESERVED.contains(&word) {
            let control = matches!(word, "if" | "while" | "for" | "with");
            // `for await (` keeps the head pending through `await`.
            self.link(start)?;
            self.operator_state();
            self.control_pending = control;
        } else if SLASH_AMBIGUOUS.contains(&word) {
            let for_await = word == "await" && self.control_pending;
            self.link(start)?;
            self.operator_state();
            self.slash = Slash::Ambiguous;
            self.control_pending = for_await;
        } else if CONTEXTUAL.contains(&word) {
            self.link(start)?;
            self.operand();
        } else {
            self.operand();
        }
        Ok(())
    }

    /// From a token the parser cannot read the way the scan does (it
    /// reports an error there but may go on parsing after recovering), the
    /// rest is counted without trusting any reading: every opening bracket,
    /// operator and word adds a level and nothing closes or ends a
    /// statement. Past a limit that way, the unreadable token is the error.
    fn unreadable(&mut self, offset: usize, what: &str) -> Result<(), TooDeep> {
        let mut nesting = self.stack.len() as u32 - 1;
        let mut depth = self.depth;
        let mut in_word = false;
        for &b in &self.text[offset..] {
            let word = is_word_byte(b) || b == b'\\' || b >= 0x80;
            match b {
                b'(' | b'[' | b'{' | b'`' => {
                    nesting += 1;
                    depth += 1;
                }
                b'<' if self.ts => {
                    nesting += 1;
                    depth += 1;
                }
                b')' | b']' | b'}' | b'\'' | b'"' => {}
                _ if word => depth += u32::from(!in_word),
                _ if b.is_ascii_punctuation() => depth += 1,
                _ => {}
            }
            in_word = word;
            if nesting > MAX_NESTING || depth > MAX_DEPTH {
                return Err(TooDeep {
                    offset: offset as u32,
                    message: format!("{what}; the code after it cannot be checked"),
                    syntax: true,
                });
            }
        }
        self.at = self.text.len();
        Ok(())
    }

    /// Skips to the end of the line (not past its terminator).
    fn line_comment(&mut self) {
        while self.at < self.text.len() {
            let (c, len) = self.char_at(self.at);
            if is_line_terminator(c) {
                break;
            }
            self.at += len;
        }
    }

    fn punctuator(&mut self, start: usize) -> Result<(), TooDeep> {
        let rest = &self.text[self.at..];
        let b = rest[0];
        // HTML-like comments (Annex B), which the parser accepts in scripts:
        // `<!--` anywhere, `-->` first on a line.
        if rest.starts_with(b"<!--") || (self.newline && rest.starts_with(b"-->")) {
            self.at += 3;
            self.line_comment();
            return Ok(());
        }
        if self.ts && b == b'<' && !rest.starts_with(b"<=") && !rest.starts_with(b"<<=") {
            // Type arguments or parameters, or a comparison: counted as a
            // group either way; comparisons end at the statement's end. `<<`
            // is one token (so `<<!--` holds no comment), two groups in types.
            let len = if rest.starts_with(b"<<") { 2 } else { 1 };
            for _ in 0..len {
                self.at += 1;
                self.push(Kind::Angle, start)?;
            }
            self.operator_state();
            return Ok(());
        }
        if self.ts && b == b'>' && self.top().kind == Kind::Angle {
            self.at += 1;
            self.pop();
            self.link(start)?;
            self.operand();
            // `A<B> /x/` is not meaningful either way; refuse rather than guess.
            self.slash = Slash::Ambiguous;
            return Ok(());
        }
        const OPERATORS: &[&[u8]] = &[
            b">>>=", b"...", b"===", b"!==", b"**=", b"<<=", b">>=", b">>>", b"&&=", b"||=",
            b"??=", b"=>", b"==", b"!=", b"<=", b">=", b"&&", b"||", b"??", b"?.", b"++", b"--",
            b"+=", b"-=", b"*=", b"%=", b"&=", b"|=", b"^=", b"**", b"<<", b">>",
        ];
        let len = OPERATORS
            .iter()
            .find(|op| rest.starts_with(op))
            .map_or(1, |op| op.len());
        let op = &rest[..len];
        // `?.5` is `?` then `.5`.
        if op == b"?." && rest.get(2).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
            self.link(start)?;
            self.operator_state();
            return Ok(());
        }
        self.at += len;
        let postfix = self.ends_expression && !self.newline;
        if matches!(op, b"&&" | b"||" | b"??") {
            self.pop_angles();
        }
        self.link(start)?;
        match op {
            b"++" | b"--" if postfix => self.operand(),
            // TypeScript's non-null assertion `x!`.
            b"!" if self.ts && postfix => self.operand(),
            b"?." => {
                self.operator_state();
                self.after_dot = true;
            }
            _ => self.operator_state(),
        }
        Ok(())
    }
}

/// Characters (beyond ASCII) a name may hold, as far as this scan needs
/// to know; anything else outside a literal or comment is invalid.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '\u{200c}' | '\u{200d}')
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'#'
}

fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// Whitespace other than line terminators, as ECMAScript defines it.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | ' ' | '\u{a0}' | '\u{feff}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}
