//! Source → prepared JavaScript → bytecode, once per content hash.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use citadel_analyzer::{Diagnostic, Globals, Language, PositionMap, SYNTAX_RULE, Severity};
use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::compile;

/// A prepared script: its analysis and, when it compiles, its bytecode.
/// Immutable and shared; runs borrow it.
#[derive(Debug)]
pub struct Script {
    /// SHA-256 of the language tag and the source.
    pub hash: [u8; 32],
    pub language: Language,
    /// Every rule's findings plus syntax errors, in source order.
    pub diagnostics: Vec<Diagnostic>,
    pub(crate) compiled: Option<Compiled>,
}

#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) bytecode: Box<[u8]>,
    pub(crate) positions: PositionMap,
    /// The built-in groups the script can reach: what its contexts get.
    pub(crate) globals: Globals,
}

impl Script {
    /// True when the script compiled and can run (policy aside).
    pub fn is_runnable(&self) -> bool {
        self.compiled.is_some()
    }

    /// The optional built-in groups a context for this script gets (none
    /// when it does not compile).
    pub fn globals(&self) -> Globals {
        self.compiled.as_ref().map_or(Globals::NONE, |c| c.globals)
    }

    pub fn hash_hex(&self) -> String {
        self.hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Prepares and compiles without any cache.
    pub fn compile(source: &str, language: Language) -> Script {
        Script::compile_hashed(content_hash(source, language), source, language)
    }

    fn compile_hashed(hash: [u8; 32], source: &str, language: Language) -> Script {
        let prepared = citadel_analyzer::prepare(source, language);
        let mut diagnostics = prepared.diagnostics;
        let compiled = prepared.program.and_then(|program| {
            match compile::compile(&program.js, c"script") {
                Ok(bytecode) => Some(Compiled {
                    bytecode: bytecode.into(),
                    positions: program.positions,
                    globals: program.globals,
                }),
                Err(e) => {
                    // The analyzer parses sloppy code; QuickJS compiles in strict
                    // mode and may refuse what oxc accepted.
                    let (line, column) = program.positions.map(e.line, e.column);
                    diagnostics.push(Diagnostic {
                        rule: SYNTAX_RULE.into(),
                        severity: Severity::Error,
                        message: e.message,
                        line,
                        column,
                    });
                    None
                }
            }
        });
        Script {
            hash,
            language,
            diagnostics,
            compiled,
        }
    }
}

fn content_hash(source: &str, language: Language) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(language.as_str().as_bytes());
    h.update(b"\0");
    h.update(source.as_bytes());
    h.finalize().into()
}

/// The bytecode of the prelude, compiled on first use without source text,
/// like the web module: its functions show none, and every fresh context
/// reads fewer bytes (about a fifth less time loading it).
pub(crate) fn prelude() -> &'static [u8] {
    static PRELUDE: OnceLock<Vec<u8>> = OnceLock::new();
    PRELUDE.get_or_init(|| {
        compile::compile_stripped(include_str!("prelude.js"), c"prelude")
            .unwrap_or_else(|e| panic!("the prelude must compile: {e:?}"))
    })
}

/// The parts of the web module (`web/*.js`): the core, then one per group
/// in the order they are installed.
pub(crate) const WEB_PARTS: [(Globals, &str); 7] = [
    (Globals::URL, include_str!("web/url.js")),
    (Globals::ENCODING, include_str!("web/encoding.js")),
    (Globals::EVENTS, include_str!("web/events.js")),
    (Globals::TIMERS, include_str!("web/timers.js")),
    (Globals::CLONE, include_str!("web/clone.js")),
    (Globals::CRYPTO, include_str!("web/crypto.js")),
    (Globals::FETCH, include_str!("web/fetch.js")),
];

/// The bytecode of the web module's core (`None`) or of the part of a
/// group (its index in [`WEB_PARTS`]), compiled on first use without source
/// text: its functions show none (`[native code]`), and a context loads far
/// fewer bytes. Frames are named like the prelude's, so that stack traces
/// drop them.
pub(crate) fn web(part: Option<usize>) -> &'static [u8] {
    static CORE: OnceLock<Vec<u8>> = OnceLock::new();
    static PARTS: [OnceLock<Vec<u8>>; 7] = [const { OnceLock::new() }; 7];
    let (cell, source) = match part {
        None => (&CORE, include_str!("web/core.js")),
        Some(i) => (&PARTS[i], WEB_PARTS[i].1),
    };
    cell.get_or_init(|| {
        compile::compile_stripped(source, c"prelude")
            .unwrap_or_else(|e| panic!("the web module must compile: {e:?}"))
    })
}

/// The bytecode of the date module (`web/date.js`, local time in the run's
/// zone), compiled on first use without source text, like the web parts.
pub(crate) fn date() -> &'static [u8] {
    static DATE: OnceLock<Vec<u8>> = OnceLock::new();
    DATE.get_or_init(|| {
        compile::compile_stripped(include_str!("web/date.js"), c"prelude")
            .unwrap_or_else(|e| panic!("the date module must compile: {e:?}"))
    })
}

/// The bytecode of the `Intl` module (`web/intl.js`), compiled on first
/// use without source text.
pub(crate) fn intl() -> &'static [u8] {
    static INTL: OnceLock<Vec<u8>> = OnceLock::new();
    INTL.get_or_init(|| {
        compile::compile_stripped(include_str!("web/intl.js"), c"prelude")
            .unwrap_or_else(|e| panic!("the Intl module must compile: {e:?}"))
    })
}

/// The bytecode of the date module's local-time part
/// (`web/local_time.js`), loaded into a context on its first use.
pub(crate) fn local_time() -> &'static [u8] {
    static LOCAL: OnceLock<Vec<u8>> = OnceLock::new();
    LOCAL.get_or_init(|| {
        compile::compile_stripped(include_str!("web/local_time.js"), c"prelude")
            .unwrap_or_else(|e| panic!("the local-time module must compile: {e:?}"))
    })
}

/// A bounded LRU of scripts by content hash.
pub(crate) struct CompileCache {
    entries: Mutex<LruCache<[u8; 32], Arc<Script>>>,
    compilations: AtomicU64,
}

impl CompileCache {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        CompileCache {
            entries: Mutex::new(LruCache::new(capacity)),
            compilations: AtomicU64::new(0),
        }
    }

    pub(crate) fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    pub(crate) fn get_or_compile(&self, source: &str, language: Language) -> Arc<Script> {
        let hash = content_hash(source, language);
        if let Some(hit) = self.lock().get(&hash) {
            return Arc::clone(hit);
        }
        // Compile outside the lock; two racing misses both compile, which is
        // harmless and keeps the lock short.
        let script = Arc::new(Script::compile_hashed(hash, source, language));
        self.compilations.fetch_add(1, Ordering::Relaxed);
        self.lock().put(hash, Arc::clone(&script));
        script
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<[u8; 32], Arc<Script>>> {
        // A panic while holding the lock cannot leave the LRU half-updated in
        // a way that matters: entries are immutable `Arc`s.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
