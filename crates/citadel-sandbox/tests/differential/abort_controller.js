// Cancellation: AbortController, listeners, reasons, combined signals.
const c = new AbortController();
const log = [];
c.signal.addEventListener("abort", (e) => log.push(["event", e.type, c.signal.aborted]));
c.signal.onabort = () => log.push(["onabort"]);
const any = AbortSignal.any([c.signal, new AbortController().signal]);
c.abort(new Error("stop"));
c.abort("again");
let thrown;
try { c.signal.throwIfAborted(); } catch (e) { thrown = e.message; }
const t = AbortSignal.timeout(10);
await new Promise((r) => setTimeout(r, 50));
return { log, reason: c.signal.reason.message, thrown, any: [any.aborted, any.reason.message], pre: AbortSignal.abort().reason.name, timeout: [t.aborted, t.reason.name] };
