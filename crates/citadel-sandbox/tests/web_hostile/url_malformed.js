// Malformed URLs are a TypeError each, never a crash; the valid neighbour
// still parses.
// expect: succeeded -
// result: [9, "https://example.com/ok", false, null]
const bad = ["", "http://", "https://exa mple.com", "http://[::1", "http://a:99999", "//no-scheme", "http://\u0000x/",
  "http://\uD800.com", "http://xn--a.com:b"];
let typed = 0;
for (const s of bad) {
  try { new URL(s); } catch (e) { if (e instanceof TypeError) typed++; }
}
let tooLong = "http://a/" + "x".repeat(100000);
new URL(tooLong);
return [typed, new URL("ok", "https://example.com/").href, URL.canParse("http://[::1"), URL.parse("nope")];
