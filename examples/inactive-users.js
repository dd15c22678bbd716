// Finds users not seen for `input.days` days in the tenant's reporting
// database, emits `user.inactive` for each, posts a summary to
// `input.report_url` with a secret as bearer token, and counts its runs in
// the tenant's key-value store. Granted: db `reporting`, secret
// `REPORT_TOKEN`, http to the report's host, kv, events `user.inactive`.
const days = input?.days ?? 30;
const stale = await api.db.query(
  "SELECT id, email FROM users WHERE last_seen_days > ? ORDER BY id",
  [days],
);
for (const user of stale.rows) {
  await api.events.emit("user.inactive", { id: user.id, email: user.email });
}

const token = await api.secrets.get("REPORT_TOKEN");
const posted = await api.http.fetch(input.report_url, {
  method: "PUT",
  headers: { authorization: `Bearer ${token}` },
  body: { value: { inactive: stale.rows.map((u) => u.id), days } },
});
if (!posted.ok) throw new Error(`the report was refused: ${posted.status} ${posted.body}`);

// A counter with compare-and-set: two runs at once never lose an increment.
for (;;) {
  const runs = await api.kv.getWithVersion("inactive-users:runs");
  const next = (runs?.value ?? 0) + 1;
  const written = await api.kv.set("inactive-users:runs", next, { if_version: runs?.version ?? 0 });
  if (written.ok) break;
}
return { processed: stale.rows.length };
