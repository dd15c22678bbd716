// A granted capability its host does not serve fails the run as `unavailable`.
// expect: failed unavailable
// grants: kv
// message: `kv` is not available
await api.kv.set("k", 1);
