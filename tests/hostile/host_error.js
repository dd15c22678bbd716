// A capability that is granted but refused by the host rejects with its error.
// expect: succeeded -
// grants: kv
// result: ["Unavailable","unavailable"]
try {
  await api.kv.get("k");
} catch (e) {
  return [e.name, e.code];
}
