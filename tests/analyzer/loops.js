// expect: no-unbounded-loop@2:1 no-unbounded-loop@3:1 no-unbounded-loop@4:1 no-unbounded-loop@5:1
while (true) {}
for (;;) { for (;;) { break; } }
do { const f = () => { return 1; }; } while (1);
while (true) { switch (input) { case 1: break; } }
while (true) { if (input) break; }
for (;;) { await api.sleep(1); }
outer: while (true) { for (;;) { break outer; } }
while (true) { throw new Error("x"); }
