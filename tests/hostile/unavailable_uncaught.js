// A granted capability its host does not serve fails the run as `unavailable`,
// located at the call.
// expect: failed unavailable
// grants: kv
// message: `kv` is not available
// line: 8
const key = "k";
await api.kv.set(key, 1);
