// URL: IDNA hosts, setters (port, protocol, host, search, hash), query
// decoding with bad escapes, tags.
const u = new URL("https://例え.jp/パス?q=値#h");
const v = new URL("http://user@host:80/");
v.port = "8080"; v.protocol = "https"; v.host = "other:443";
const w = new URL("https://a.b/c"); w.search = "?x=1 2"; w.hash = "a b";
const p = new URLSearchParams("a=1&a=2&b=%zz&c=%e2%82%ac");
return [u.href, u.hostname, u.pathname, v.href, w.href, [...p], String(new URLSearchParams([["é", "ü"]])), p.get("b"), Object.prototype.toString.call(u), JSON.stringify(new URL("http://x/?a=b").searchParams)];
