// expect: succeeded -
// result: [{"a": [1, 2, {"b": null}], "c": "é😀"}, "{\n  \"x\": 1\n}", 3, "\"\\ud800\""]
const v = JSON.parse('{"a":[1,2,{"b":null}],"c":"\\u00e9\\ud83d\\ude00"}');
return [v, JSON.stringify({ x: 1 }, null, 2), JSON.parse("[1,2,3]", (k, x) => (Array.isArray(x) ? x.length : x)), JSON.stringify("\ud800")];
