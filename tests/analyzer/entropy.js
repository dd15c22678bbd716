// expect: high-entropy-string@2:15
const token = "q8Zr2VtY7mKp3LxW9nBf4HsJ6dGc1AeU";
const sentence = "this is an ordinary sentence with spaces";
const hash = "d41d8cd98f00b204e9800998ecf8427e";
const id = "order-2024-000123";
