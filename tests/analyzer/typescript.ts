// Types do not confuse the rules; positions are the TypeScript source's.
// expect: no-eval@5:3
type Input = { expression: string };
const { expression } = input as Input;
  eval(expression);
