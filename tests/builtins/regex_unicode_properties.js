// expect: succeeded -
// result: [true, true, true, ["α", "β"], true, "x-x"]
return [
  /\p{L}+/u.test("héllo"),
  /\p{Script=Greek}/u.test("λ"),
  /^\p{Emoji_Presentation}$/u.test("😀"),
  "aαbβ".match(/\p{Script=Greek}/gu),
  /\P{N}/u.test("a"),
  "x1x".replace(/\p{Nd}/u, "-"),
];
