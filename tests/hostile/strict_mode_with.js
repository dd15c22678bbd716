// Scripts compile in strict mode; `with` is refused before running.
// expect: failed rejected
with ({ a: 1 }) {
  return a;
}
