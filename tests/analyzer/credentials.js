// expect: hardcoded-credential@2:13 hardcoded-credential@3:16 hardcoded-credential@4:17 hardcoded-credential@5:16 hardcoded-credential@6:13 hardcoded-credential@7:14
const aws = "AKIAIOSFODNN7EXAMPLE";
const github = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
const stripe = `sk_live_4eC39HqLyjWDarjtT1zdp7dc`;
const slack  = "xoxb-123456789012-1234567890123-abc";
const key = "-----BEGIN RSA PRIVATE KEY-----\nMIIE...";
const goog = "AIzaSyA1234567890abcdefghijklmnopqrstuv";
