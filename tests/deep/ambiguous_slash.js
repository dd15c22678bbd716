// wide: a `/` after a block cannot be classified without parsing
// expect: nesting-limit@4:1
if (input) {}
/\(/.test('(');
return 1;
