// Runs on a schedule; sums counters kept in the tenant's key-value store.
// Grant: {"kv": true}
const keys: string[] = (input && input.keys) || ["signups", "orders"];
const totals: Record<string, number> = {};
for (const key of keys) {
  const value = await api.kv.get(`daily:${key}`);
  totals[key] = typeof value === "number" ? value : 0;
  await api.kv.set(`daily:${key}`, 0);
}
console.log("report", JSON.stringify(totals));
return { period_end: new Date().toISOString(), totals };
