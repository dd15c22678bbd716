const cases = JSON.parse(Deno.readTextFileSync(Deno.args[0]));
const out = [];
for (const c of cases) {
  let v;
  try { v = (0, eval)(c); } catch (e) { v = "threw " + e.name; }
  out.push([c, v]);
}
console.log(JSON.stringify(out, null, 1));
