// expect: succeeded -
// result: ["1267650600228229401496703205376", "ff", "-7", true]
return [String(2n ** 100n), (255n).toString(16), String(-15n / 2n), BigInt.asUintN(8, 257n) === 1n];
