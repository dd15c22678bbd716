// expect: no-dynamic-import@2:22
const module = await import("node:fs");
