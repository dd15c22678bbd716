// The next run gets a fresh runtime and must not see any of this.
// expect: succeeded -
// result: "polluted"
// after: return [({}).polluted === undefined, typeof [].map, JSON.stringify({a: 1})];
// after-result: [true,"function","{\"a\":1}"]
Object.prototype.polluted = "yes";
Array.prototype.map = null;
JSON.stringify = () => "hijacked";
return "polluted";
