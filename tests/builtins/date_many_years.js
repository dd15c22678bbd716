// expect: succeeded -
// result: 0
// Local time across centuries and DST-like boundaries in one run.
let bad = 0;
for (let y = 1850; y <= 2150; y += 7) {
  for (let m = 0; m < 12; m += 1) {
    const d = new Date(y, m, 28, 2, 30);
    if (d.getFullYear() !== y || d.getMonth() !== m || d.getHours() !== 2) bad++;
    if (d.toString().length < 20) bad++;
  }
}
return bad;
