// expect: failed rejected
// line: 4
let fine = 1;
let = = 2;
