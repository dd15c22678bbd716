// Many small values add up past the result limit.
// expect: failed result_too_large
return Array.from({ length: 400000 }, (_, i) => i);
