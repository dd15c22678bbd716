// Runs a parameterised, read-only query against the `reporting` data source.
// Grant: {"db": ["reporting"]}
const since: string = (input && input.since) || "1970-01-01";
const rows = await api.db.query(
  "SELECT plan, count(*) AS customers FROM customers WHERE created_at >= $1 GROUP BY plan",
  [since],
  { source: "reporting" },
);
return { since, rows };
