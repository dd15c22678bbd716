// Resolving references against a base, and what is not a URL.
const base = "http://example.com/a/b/c?q#f";
const refs = ["../d", "./e?x", "//other.org/p", "?y", "#g", "/abs", "HTTP://EXAMPLE.COM:80/%7Efoo", "http://[::1]:8080/", "mailto:a@b.c"];
const out = refs.map((r) => new URL(r, base).href);
let invalid;
try { new URL("not a url"); } catch (e) { invalid = e.constructor.name; }
return { out, invalid, canParse: [URL.canParse("x:"), URL.canParse("http://"), URL.canParse("a", "http://b/")] };
