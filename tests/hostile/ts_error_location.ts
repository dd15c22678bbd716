// expect: failed script_error
// line: 7
// message: boom
type Order = { id: string; total: number };
const order: Order = { id: "a", total: 3 };
const total: number = order.total * 2;
throw new Error("boom");
