// Slack-style notifier.

interface OrderPaid {
  order_id: string;
  amount_cents: number;
}

async function post(ctx: any, text: string, key: string): Promise<number> {
  const url: string = await ctx.secrets.get("SLACK_WEBHOOK_URL");
  const res = await ctx.http.fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ channel: ctx.config.channel, text }),
  });
  await ctx.kv.set(`last:${key}`, text);
  return res.status;
}

hook("order.paid", async (ctx: any, event: { data: OrderPaid }) => {
  const order = event.data;
  if (order.amount_cents < (ctx.config.min_amount_cents ?? 0)) {
    return { skipped: true };
  }
  return { status: await post(ctx, `Order ${order.order_id} paid: ${order.amount_cents / 100}`, order.order_id) };
});

hook("build.completed", async (ctx: any, event: { data: { id: string; ok: boolean } }) => {
  const { id, ok } = event.data;
  return { status: await post(ctx, `Build ${id} ${ok ? "passed" : "failed"}`, id) };
});

route("POST", "/commands", async (ctx: any, req: { body: { text?: string } }) => {
  const text = req.body.text ?? "";
  return { status: 200, body: { response_type: "ephemeral", text: `echo: ${text}` } };
});

route("GET", "/messages/:id", async (ctx: any, req: { params: { id: string } }) => {
  const text = await ctx.kv.get(`last:${req.params.id}`);
  return text == null ? { status: 404, body: { error: "not found" } } : { status: 200, body: { text } };
});
