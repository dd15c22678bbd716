// expect: failed invalid_result
return () => 1;
