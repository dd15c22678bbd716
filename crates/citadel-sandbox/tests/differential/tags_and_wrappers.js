// Class tags, primitive wrappers through structuredClone, DOMException.
const tags = [new DOMException("x"), new TextEncoder(), new TextDecoder(), new Event("a"), new EventTarget(), new AbortController(), new AbortController().signal, new File([], "f"), crypto, crypto.subtle, performance, new CustomEvent("c"), new FormData()].map((o) => Object.prototype.toString.call(o));
const w = [structuredClone(new Boolean(false)), structuredClone(new Number(3)), structuredClone(new String("s")), structuredClone(Object(1n))];
return [tags, w.map((x) => [typeof x, Object.prototype.toString.call(x), x.valueOf().toString()]), new DOMException("m", "AbortError").code, String(new DOMException("m", "NotFoundError")), new DOMException("m") instanceof Error];
