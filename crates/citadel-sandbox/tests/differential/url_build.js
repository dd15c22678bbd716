// Building an API URL: base, path, query parameters, hash.
const u = new URL("/v1/orders", "https://api.example.com:443/ignored?x=1");
u.searchParams.set("status", "paid & shipped");
u.searchParams.append("tag", "ü");
u.searchParams.append("tag", "b");
u.hash = "top";
u.username = "me";
return { href: u.href, origin: u.origin, host: u.host, port: u.port, search: u.search, tags: u.searchParams.getAll("tag"), json: JSON.stringify({ u }) };
