// Headers: forEach, bad pairs and values, copies, sorting, tags.
const h = new Headers([["A", "1"], ["b", "2"]]);
const out = [];
h.forEach((v, k, o) => out.push([k, v, o === h]));
let e1; try { new Headers([["a"]]); } catch (e) { e1 = e.constructor.name; }
let e2; try { new Headers({ a: "x\ny" }); } catch (e) { e2 = e.constructor.name; }
const r = new Response("x", { headers: h });
h.set("c", "3");
return [out, e1, e2, r.headers.has("c"), [...new Headers({ "Z": "1", "a": "2" }).keys()], Object.prototype.toString.call(h), String(new Headers())];
