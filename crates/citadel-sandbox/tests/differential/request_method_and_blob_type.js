// Request methods the standard upper-cases (PATCH is not one), and Blob
// types (lower-cased when printable ASCII, else empty).
return [new Request("https://a/", {method: "patch"}).method, new Request("https://a/", {method: "post"}).method, new Blob([], {type: "A/B"}).type, new Blob([], {type: "a/b\u00e9"}).type];
