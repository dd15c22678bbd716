// A capability that is granted but refused by the host rejects with its error.
// expect: succeeded -
// grants: kv
// result: ["HostError","unavailable"]
try {
  await api.kv.get("k");
} catch (e) {
  return [e.name, e.code];
}
