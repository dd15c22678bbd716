// Runs when an event arrives: `input` is {id, type, data}. Subscribe it with
// PUT /v1/subscriptions/on-paid {"event": "order.paid", "script": "…"}.
// Grant: {"events": {"emit": ["order.*"]}}
interface OrderPaid {
  order_id: string;
  amount_cents: number;
}

const order = input.data as OrderPaid;
if (!order || typeof order.order_id !== "string") {
  throw new Error("expected an order.paid event with an order_id");
}
console.log(`order ${order.order_id} paid: ${order.amount_cents} cents`);

if (order.amount_cents >= 100_000) {
  await api.events.emit("order.large", { order_id: order.order_id });
}
return { handled: order.order_id };
