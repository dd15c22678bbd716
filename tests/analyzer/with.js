// expect: no-with@2:1
with (input) {
  console.log(x);
}
