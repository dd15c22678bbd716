// expect: succeeded -
// result: true
if (typeof TextEncoder === "undefined") return true;
const bytes = new TextEncoder().encode("é😀");
return new TextDecoder().decode(bytes) === "é😀";
