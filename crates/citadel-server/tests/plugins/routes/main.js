// Route handlers that misbehave, one per way; the server answers each
// with a typed error and never the handler's own text or stack.
route("GET", "/throws", async () => {
  throw new Error("secret internals at /srv/app.js:12");
});
route("GET", "/hangs", async () => {
  while (Date.now() > 0) {}
});
route("GET", "/huge", async () => ({ status: 200, body: "x".repeat(100 * 1024 * 1024) }));
route("GET", "/not-a-response", async () => "just a string");
route("GET", "/bad-status", async () => ({ status: 42, body: "?" }));
route("GET", "/bad-header", async () => ({ status: 200, headers: { "x-bad": "line\r\nbreak" }, body: "?" }));
route("GET", "/kv", async (ctx) => ctx.kv.get("anything"));
