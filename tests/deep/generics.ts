// wide: comparisons and generics side by side
// expect: none
function f<T extends Array<Map<string, number>>>(x: T): T { return x; }
let a = 1, b = 2;
let c = a < b && b > a;
let d = f<Array<Map<string, number>>>([]);
for (let i = 0; i < 10; i++) { a = a < i ? i : a; }
return [a, b, c, d];
