// Events: handleEvent, stopImmediatePropagation, removal by signal,
// abort reasons, illegal constructors.
const t = new EventTarget();
const log = [];
const l = { handleEvent(e) { log.push(["h", this === l, e.currentTarget === t]); } };
t.addEventListener("a", l);
t.addEventListener("a", (e) => { log.push("s"); e.stopImmediatePropagation(); });
t.addEventListener("a", () => log.push("never"));
const ev = new Event("a");
t.dispatchEvent(ev);
log.push(ev.target === t, ev.currentTarget, ev.eventPhase);
const c = new AbortController();
t.addEventListener("b", () => log.push("b"), { signal: c.signal });
c.abort();
t.dispatchEvent(new Event("b"));
log.push(AbortSignal.abort("why").reason, typeof AbortSignal.timeout(5).throwIfAborted);
try { new AbortSignal(); } catch (e) { log.push(e.constructor.name); }
try { new Event(); } catch (e) { log.push(e.constructor.name); }
return log;
