// Headers: case-insensitive names, combined repeats, sorted iteration,
// invalid names.
const h = new Headers({ "Content-Type": "application/json", "X-Trace": " abc " });
h.append("Accept", "text/html");
h.append("accept", "application/json");
h.append("Set-Cookie", "a=1");
h.append("Set-Cookie", "b=2");
h.delete("x-trace");
let bad;
try { h.set("bad name", "x"); } catch (e) { bad = e.name; }
return { get: h.get("ACCEPT"), has: h.has("content-type"), entries: [...h], cookies: h.getSetCookie(), keys: [...h.keys()], missing: h.get("nope"), bad, trimmed: new Headers([["a", "  b  "]]).get("a") };
