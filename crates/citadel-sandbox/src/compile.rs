//! JavaScript to QuickJS bytecode, in a throwaway runtime that has `eval`
//! (the parser) — the runtimes that execute scripts never do.

use std::ffi::CStr;

use rquickjs::context::intrinsic;
use rquickjs::{Context, Ctx, Runtime, Value, qjs};

/// Where a compile error is, in the generated JavaScript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompileError {
    pub message: String,
    pub line: u32,
    pub column: u32,
}

/// The memory a compilation may use. Sources are capped at 1 MiB before this.
const COMPILE_MEMORY: usize = 256 << 20;

/// Compiles a script (global code, strict mode) to bytecode.
pub(crate) fn compile(js: &str, filename: &CStr) -> Result<Vec<u8>, CompileError> {
    compile_with(js, filename, 0)
}

/// As [`compile`], leaving out the functions' source text (their
/// `toString` then shows `[native code]`); positions are kept.
pub(crate) fn compile_stripped(js: &str, filename: &CStr) -> Result<Vec<u8>, CompileError> {
    compile_with(js, filename, qjs::JS_WRITE_OBJ_STRIP_SOURCE as i32)
}

fn compile_with(js: &str, filename: &CStr, strip: i32) -> Result<Vec<u8>, CompileError> {
    let internal = |message: String| CompileError {
        message,
        line: 1,
        column: 1,
    };
    let rt = Runtime::new().map_err(|e| internal(e.to_string()))?;
    rt.set_memory_limit(COMPILE_MEMORY);
    rt.set_max_stack_size(1 << 20);
    let ctx = Context::custom::<(intrinsic::Eval, intrinsic::RegExpCompiler)>(&rt)
        .map_err(|e| internal(e.to_string()))?;
    ctx.with(|ctx| {
        let mut source = Vec::with_capacity(js.len() + 1);
        source.extend_from_slice(js.as_bytes());
        source.push(0);
        let flags =
            qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_STRICT | qjs::JS_EVAL_FLAG_COMPILE_ONLY;
        // SAFETY: `source` is NUL-terminated and outlives the call; the
        // returned value is owned and handed to `Value`, which frees it.
        let function = unsafe {
            let raw = qjs::JS_Eval(
                ctx.as_raw().as_ptr(),
                source.as_ptr().cast(),
                js.len() as _,
                filename.as_ptr(),
                flags as i32,
            );
            Value::from_raw(ctx.clone(), raw)
        };
        if function.is_exception() {
            return Err(exception_position(&ctx));
        }
        let mut len = 0;
        // SAFETY: `function` is a live compiled function of this context; the
        // buffer returned is freed with `js_free` after copying.
        unsafe {
            let buf = qjs::JS_WriteObject(
                ctx.as_raw().as_ptr(),
                &mut len,
                function.as_raw(),
                qjs::JS_WRITE_OBJ_BYTECODE as i32 | strip,
            );
            if buf.is_null() {
                return Err(internal("could not serialise bytecode".into()));
            }
            let mut bytes = std::slice::from_raw_parts(buf, len as usize).to_vec();
            qjs::js_free(ctx.as_raw().as_ptr(), buf.cast());
            mark_unchecked(&mut bytes);
            Ok(bytes)
        }
    })
}

/// QuickJS's bytecode starts with a version byte and a checksum of the rest,
/// which it recomputes on every load: a serial pass over every byte (for the
/// prelude, about a sixth of making a context). The checksum detects
/// corrupted files; this bytecode never leaves the process that made it and
/// is not validated by QuickJS in any case (see [`load`]). A checksum of
/// `u32::MAX` is QuickJS's own "do not check", written here.
fn mark_unchecked(bytecode: &mut [u8]) {
    if let Some(checksum) = bytecode.get_mut(1..5) {
        checksum.copy_from_slice(&u32::MAX.to_le_bytes());
    }
}

/// Reads the pending exception of a failed compilation: its message and the
/// position QuickJS reports in its stack (`at file:line:column`).
fn exception_position(ctx: &Ctx<'_>) -> CompileError {
    let exception = ctx.catch();
    let (mut message, mut stack) = (String::from("syntax error"), String::new());
    if let Some(obj) = exception.as_object() {
        if let Ok(m) = obj.get::<_, String>("message") {
            message = m;
        }
        if let Ok(s) = obj.get::<_, String>("stack") {
            stack = s;
        }
    }
    let (line, column) = stack
        .lines()
        .find_map(parse_frame_position)
        .unwrap_or((1, 1));
    CompileError {
        message,
        line,
        column,
    }
}

/// `    at name (file:12:5)` or `    at file:12:5` → (12, 5).
pub(crate) fn parse_frame_position(frame: &str) -> Option<(u32, u32)> {
    let loc = frame.trim().trim_end_matches(')');
    let mut parts = loc.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((line, column))
}

/// Loads bytecode made by [`compile`] and evaluates it, returning the value
/// of the script (for a wrapped script: its function).
///
/// # Safety
/// `bytecode` must come from [`compile`] in this process: QuickJS does not
/// validate bytecode.
pub(crate) unsafe fn load<'js>(ctx: &Ctx<'js>, bytecode: &[u8]) -> rquickjs::Result<Value<'js>> {
    // SAFETY: the caller guarantees the bytecode is ours; the values are owned
    // and passed on to `Value`.
    unsafe {
        let raw = qjs::JS_ReadObject(
            ctx.as_raw().as_ptr(),
            bytecode.as_ptr(),
            bytecode.len() as _,
            qjs::JS_READ_OBJ_BYTECODE as i32,
        );
        if qjs::JS_IsException(raw) {
            return Err(rquickjs::Error::Exception);
        }
        let value = qjs::JS_EvalFunction(ctx.as_raw().as_ptr(), raw);
        if qjs::JS_IsException(value) {
            return Err(rquickjs::Error::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), value))
    }
}

#[cfg(test)]
mod tests {
    use citadel_analyzer::{Language, MAX_DEPTH, MAX_NESTING, prepare};

    use super::*;

    /// Runs `f` on a thread with a runtime worker's 2 MiB stack.
    fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    /// QuickJS's parser recurses per level too; past its own stack limit it
    /// throws, and the throw is a located compile error, not a crash.
    #[test]
    fn code_nested_past_quickjs_stack_limit_is_a_compile_error() {
        let n = 100_000;
        for js in [
            format!("({}1{})", "(".repeat(n), ")".repeat(n)),
            format!("[{}1{}]", "[".repeat(n), "]".repeat(n)),
            format!("({}1)", "!".repeat(n)),
            format!("({}1)", "x=>".repeat(n)),
            format!("({}1{})", "`${".repeat(n), "}`".repeat(n)),
        ] {
            let err = on_worker_stack(move || compile(&js, c"script")).unwrap_err();
            assert_eq!(err.message, "Maximum call stack size exceeded", "{err:?}");
        }
    }

    /// What the analyzer lets through compiles on a worker's stack.
    #[test]
    fn code_at_the_analyzer_limits_compiles() {
        let brackets = (MAX_NESTING - 2) as usize;
        let chain = (MAX_DEPTH - 8) as usize;
        for body in [
            format!("return {}1{};", "(".repeat(brackets), ")".repeat(brackets)),
            format!("return {}1{};", "[".repeat(brackets), "]".repeat(brackets)),
            format!(
                "return {}1{};",
                "{a:".repeat(brackets / 2),
                "}".repeat(brackets / 2)
            ),
            format!(
                "return {}1{};",
                "`${".repeat(brackets / 2),
                "}`".repeat(brackets / 2)
            ),
            format!("return {}1;", "!".repeat(chain)),
            format!("return {}1;", "x=>".repeat(chain)),
            format!("return {}0;", "input?1:".repeat(chain / 2)),
            format!("return input{};", ".a".repeat(chain)),
            format!("{}return 1;", "if(input)".repeat(chain)),
        ] {
            on_worker_stack(move || {
                let prepared = prepare(&body, Language::Js);
                assert_eq!(prepared.diagnostics, vec![], "{body:.40}");
                let js = prepared.program.unwrap().js;
                if let Err(e) = compile(&js, c"script") {
                    panic!("{body:.40}: {e:?}");
                }
            });
        }
    }
}
