// expect: succeeded -
// grants: sleep
// result: ["TypeError","invalid_argument"]
try {
  await api.sleep("soon");
} catch (e) {
  return [e.name, e.code];
}
