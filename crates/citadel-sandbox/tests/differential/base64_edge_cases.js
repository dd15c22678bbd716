// Forgiving base64: padding, whitespace, non-ASCII, coercion.
const out = [];
out.push(atob("YQ"), atob("YWI"), btoa(""), atob(""), btoa("\xff\xfe"));
for (const bad of ["YQ=", "Y", "YQ==a", "Y Q = =", "a\u00a0b"]) { try { out.push(atob(bad)); } catch (e) { out.push(e.name); } }
out.push(atob(null) === atob("null"));
try { atob(undefined); } catch (e) { out.push(e.name); }
return out;
