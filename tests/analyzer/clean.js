// expect: none
const total = input.items.reduce((sum, item) => sum + item.price, 0);
for (let i = 0; i < 10; i++) console.log(i);
while (true) {
  if (Math.random() > 0.5) break;
}
return { total };
