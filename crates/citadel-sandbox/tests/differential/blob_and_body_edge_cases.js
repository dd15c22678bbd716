// Blob slices, FormData files, bodies from Blobs and strings.
const b = new Blob(["abc", "def"], { type: "text/x" });
const out = [b.size, (await b.slice(2, -1).text()), (await b.slice(-100, 100, "x/y").text()), b.slice(1).type, Array.from(await b.bytes?.() ?? []), (await b.arrayBuffer()).byteLength];
const f = new FormData();
f.append("a", "1"); f.append("a", new Blob(["x"], { type: "t/p" }));
const file = f.getAll("a")[1];
out.push(file.name, file.type, file instanceof Blob, f.has("a"), [...f.entries()].length);
f.delete("a");
out.push([...f].length);
const r = new Response(new Blob(["zz"], { type: "a/b" }));
out.push(r.headers.get("content-type"), await r.text());
const q = new Request("https://x/", { method: "POST", body: "hi" });
out.push(q.headers.get("content-type"), q.bodyUsed, await q.text(), q.bodyUsed);
return out;
