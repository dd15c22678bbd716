// Types are stripped, not checked: valid JavaScript still runs.
// expect: succeeded -
// result: "not a number"
const n: number = "not a number" as unknown as number;
interface Unused { x: string }
return n;
