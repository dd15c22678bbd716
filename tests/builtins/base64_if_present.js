// expect: succeeded -
// result: true
if (typeof btoa === "undefined") return true;
return atob(btoa("hello")) === "hello";
