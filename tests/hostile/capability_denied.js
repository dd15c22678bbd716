// expect: failed capability_denied
// message: capability `kv` is not granted to this script
return await api.kv.get("k");
