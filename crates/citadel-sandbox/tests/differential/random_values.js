// Random bytes: lengths, ranges, the quota.
const a = crypto.getRandomValues(new Uint8Array(64));
const b = crypto.getRandomValues(new Uint32Array(8));
let quota;
try { crypto.getRandomValues(new Uint8Array(65537)); } catch (e) { quota = e.name; }
return { same: a === crypto.getRandomValues(a), length: [a.length, b.length], range: a.every((x) => x >= 0 && x < 256), varied: new Set(a).size > 10, quota };
