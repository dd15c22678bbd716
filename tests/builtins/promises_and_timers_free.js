// expect: succeeded -
// result: [1, [1, 2], "no", 3]
const r = await Promise.all([Promise.resolve(1), Promise.allSettled([Promise.reject(new Error("no"))])]);
const any = await Promise.any([Promise.reject(1), Promise.resolve(3)]);
const race = await Promise.race([Promise.resolve([1, 2])]);
return [r[0], race, r[1][0].reason.message, any];
