// Timers: order by delay, clearing, intervals, arguments.
const log = [];
const done = new Promise((resolve) => {
  setTimeout(() => log.push("30"), 30);
  setTimeout((a, b) => log.push(`10 ${a}${b}`), 10, "x", "y");
  const never = setTimeout(() => log.push("cleared"), 20);
  clearTimeout(never);
  let n = 0;
  const id = setInterval(() => {
    n++;
    if (n === 3) { clearInterval(id); log.push(`interval ${n}`); }
  }, 5);
  setTimeout(resolve, 80);
});
await done;
return log.sort();
