// expect: failed invalid_result
return 10n ** 20n;
