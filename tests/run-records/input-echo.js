// A 1 MB input: the run gets all of it, its record shows its size.
// input-bytes: 1000000
// status: succeeded
// field: /input
// max-bytes: 65536
return input.length;
