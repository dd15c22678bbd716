// UUIDs: version 4 shape, lower-case hex, no repeats.
const ids = Array.from({ length: 50 }, () => crypto.randomUUID());
const shape = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
return { all: ids.every((id) => shape.test(id)), unique: new Set(ids).size, length: ids[0].length };
