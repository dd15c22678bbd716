// expect: succeeded -
// result: true
// Math.random draws entropy; many draws must not need a new source.
let sum = 0;
for (let i = 0; i < 100000; i++) sum += Math.random();
return sum > 40000 && sum < 60000;
