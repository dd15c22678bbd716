// expect: failed invalid_result
return Symbol("s");
