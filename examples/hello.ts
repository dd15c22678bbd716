// The body of an async function: `input` is the run's JSON input, `api` holds
// the capabilities this run was granted.
type Input = { n?: number };
const { n = 1 } = (input ?? {}) as Input;
console.log(`doubling ${n}`);
await api.sleep(1);
return { processed: [1, 2, 3].map((x) => x * n).length, doubled: n * 2 };
