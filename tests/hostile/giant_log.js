// Logs past the cap are dropped; the run itself succeeds.
// expect: succeeded -
// result: 100000
// logs_truncated: true
const line = "x".repeat(1000);
let n = 0;
for (let i = 0; i < 100000; i++) {
  console.log(line);
  n++;
}
return n;
