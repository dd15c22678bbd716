// A script that replaces URL, URLSearchParams, Headers, Response, Blob,
// EventTarget and AbortSignal methods (and an index setter on
// Array.prototype) changes what it calls itself, never what the web objects do
// inside: none of its replacements is called by them, and their answers
// (read through the original accessors) stay the standard ones.
// expect: succeeded -
// result: [[], "https://example.com/p?q=1&r=2", "text/plain;charset=UTF-8", "application/json", "a=b", true, "x"]
const seen = [""];
const original = {};
for (const [name, proto] of [["URL", URL.prototype], ["URLSearchParams", URLSearchParams.prototype], ["Headers", Headers.prototype],
  ["Response", Response.prototype], ["Request", Request.prototype], ["Blob", Blob.prototype], ["AbortSignal", AbortSignal.prototype],
  ["EventTarget", EventTarget.prototype]]) {
  for (const key of Reflect.ownKeys(proto)) {
    const d = Object.getOwnPropertyDescriptor(proto, key);
    if (key === "constructor" || !d.configurable) continue;
    original[`${name}.${String(key)}`] = d;
    Object.defineProperty(proto, key, { get() { seen.push(key); return () => "swapped"; }, set() { seen.push(key); }, configurable: true });
  }
}
const get = (name, self) => { const d = original[name]; return d.get ? d.get.call(self) : d.value; };
const call = (name, self, ...args) => original[name].value.apply(self, args);
// JSON.stringify (a built-in, in Response.json) hands an index setter the
// script's own value; the setter goes in after it.
const j = Response.json({ a: 1 });
let indexSetter = 0;
Object.defineProperty(Array.prototype, "0", { set(v) { indexSetter++; }, configurable: true });
const u = new URL("https://example.com/p?q=1");
get("URL.searchParams", u);
call("URLSearchParams.append", get("URL.searchParams", u), "r", "2");
const r = new Response("body");
const q = new Request("https://example.com/", { method: "POST", body: new URLSearchParams("a=b") });
const c = new AbortController();
c.abort();
const blob = new Blob(["x"]);
const text = await call("Blob.text", blob);
const reqText = await call("Request.text", q);
const internal = seen.slice(1);
if (indexSetter > 0) internal.push("index setter");
delete Array.prototype[0];
return [
  internal,
  get("URL.href", u),
  call("Headers.get", get("Response.headers", r), "content-type"),
  call("Headers.get", get("Response.headers", j), "content-type"),
  reqText,
  get("AbortSignal.aborted", c.signal),
  text,
];
