// Events: listeners, once, handleEvent objects, CustomEvent detail,
// preventDefault.
const target = new EventTarget();
const log = [];
const onPing = (e) => log.push(["fn", e.type, e.detail, e.target === target]);
target.addEventListener("ping", onPing);
target.addEventListener("ping", onPing);
target.addEventListener("ping", { handleEvent: (e) => log.push(["object", e.detail]) }, { once: true });
target.dispatchEvent(new CustomEvent("ping", { detail: 1 }));
target.dispatchEvent(new CustomEvent("ping", { detail: 2 }));
target.removeEventListener("ping", onPing);
target.dispatchEvent(new CustomEvent("ping", { detail: 3 }));
const e = new Event("submit", { cancelable: true });
target.addEventListener("submit", (ev) => ev.preventDefault());
const result = target.dispatchEvent(e);
return { log, prevented: e.defaultPrevented, result, plain: new Event("x").cancelable };
