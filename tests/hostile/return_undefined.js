// expect: succeeded -
// result: null
return undefined;
