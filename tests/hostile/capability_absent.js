// Ungranted capabilities are not listed; granted ones are.
// expect: succeeded -
// grants: sleep
// result: [false,true,["sleep"]]
return ["kv" in api, "sleep" in api, Object.keys(api)];
