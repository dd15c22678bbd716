// expect: succeeded -
// result: [true, true, true]
const bad = (s) => { try { JSON.parse(s); return false; } catch (e) { return e instanceof SyntaxError; } };
const cyclic = {}; cyclic.self = cyclic;
let cyc = false;
try { JSON.stringify(cyclic); } catch (e) { cyc = e instanceof TypeError; }
return [bad("{"), bad("[1,]"), cyc];
