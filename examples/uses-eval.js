// `citadel check` reports this with its line and column.
const expression = input.expression;
return eval(expression);
