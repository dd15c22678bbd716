// Timers fire by their delays; cleared ones never do; without the `sleep`
// grant they still work.
// expect: succeeded -
// result: ["b", "a", 3]
const seen = [];
const gone = setTimeout(() => seen.push("cleared"), 5);
clearTimeout(gone);
await new Promise((resolve) => {
  setTimeout(() => { seen.push("a"); resolve(); }, 40);
  setTimeout(() => seen.push("b"), 10);
});
let n = 0;
await new Promise((resolve) => { const id = setInterval(() => { if (++n === 3) { clearInterval(id); resolve(); } }, 2); });
return [...seen, n];
