// Query strings: parsing, repeats, sorting, encoding.
const p = new URLSearchParams("?b=2&a=1&b=3&c=%20x+y&d");
p.sort();
const seen = [];
for (const [k, v] of p) seen.push(`${k}=${v}`);
const q = new URLSearchParams({ name: "Zoë Doe", email: "z@example.com", note: "a+b=c&d" });
q.delete("email");
return { sorted: p.toString(), seen, all: p.getAll("b"), has: [p.has("d"), p.has("b", "3"), p.has("z")], size: p.size, q: q.toString(), entries: [...new URLSearchParams([["x", "1"], ["y", "2"]]).entries()] };
