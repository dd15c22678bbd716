// Request and Response objects, as a handler builds and reads them.
const res = Response.json({ ok: true, items: [1, 2] }, { status: 201, headers: { "x-id": "7" } });
const text = new Response("plain", { statusText: "Fine" });
const req = new Request("https://example.com/hook?x=1", { method: "post", headers: { "content-type": "application/json" }, body: JSON.stringify({ a: 1 }) });
const copy = req.clone();
const bytes = new Uint8Array(await new Response(new Uint8Array([104, 105])).arrayBuffer());
let reused;
await text.clone().text();
const first = await text.text();
try { await text.text(); } catch (e) { reused = e.name; }
return {
  status: res.status, ok: res.ok, type: res.headers.get("content-type"), id: res.headers.get("x-id"), body: await res.json(),
  text: first, statusText: text.statusText, used: text.bodyUsed, reused, method: req.method, url: req.url,
  reqBody: await req.json(), copy: await copy.text(), bytes: Array.from(bytes), notOk: new Response(null, { status: 404 }).ok,
  redirect: Response.redirect("https://example.com/next", 307).headers.get("location"),
};
