// expect: no-prototype-mutation@2:1 no-prototype-mutation@3:1 no-prototype-mutation@4:1 no-prototype-mutation@5:1 no-prototype-mutation@6:1
Object.prototype.isAdmin = true;
Array.prototype["map"] = null;
input.__proto__ = {};
Object.defineProperty(String.prototype, "x", { value: 1 });
Object.setPrototypeOf(Array.prototype, null);
const mine = {};
mine.prototype = 1;
