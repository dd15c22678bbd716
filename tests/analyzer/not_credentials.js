// Prefixes inside longer words, short strings and prose are not credentials.
// expect: none
const a = "MYAKIAIOSFODNN7EXAMPLE";
const b = "sk_live_";
const c = "see ghp_ tokens in the docs";
