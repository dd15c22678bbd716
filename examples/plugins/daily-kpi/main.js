// Daily KPI: every morning at 06:00 Berlin time, yesterday's numbers.

function yesterday() {
  const d = new Date(Date.now() - 24 * 3600 * 1000);
  return d.toISOString().slice(0, 10);
}

job("daily_kpi", async (ctx) => {
  const day = yesterday();
  const { rows } = await ctx.db.query(
    "SELECT count(*) AS orders, coalesce(sum(amount_cents), 0) AS revenue FROM orders WHERE day = ?",
    [day],
    { source: "reporting" },
  );
  const kpi = { day, orders: rows[0].orders, revenue_cents: rows[0].revenue };
  await ctx.kv.set(`kpi:${day}`, kpi);
  await ctx.events.emit("kpi.computed", kpi);
  ctx.log.info(`KPIs for ${day}: ${kpi.orders} orders`);
  return kpi;
});

route("GET", "/kpi/:day", async (ctx, req) => {
  const kpi = await ctx.kv.get(`kpi:${req.params.day}`);
  return kpi ? { status: 200, body: kpi } : { status: 404, body: { error: "no KPIs for that day" } };
});
