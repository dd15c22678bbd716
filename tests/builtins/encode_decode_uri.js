// expect: succeeded -
// result: ["a%20b%2Fc", "a b/c", "%C3%A9", true]
let threw = false;
try { decodeURIComponent("%"); } catch (e) { threw = e instanceof URIError; }
return [encodeURIComponent("a b/c"), decodeURIComponent("a%20b%2Fc"), encodeURI("é"), threw];
