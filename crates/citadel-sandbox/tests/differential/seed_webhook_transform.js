// The seed's webhook transform as written for Deno: verify the HMAC
// signature over the raw body, reshape the payload, and format the amount
// in the customer's locale.
const secret = "It's a Secret to Everybody";
const raw = JSON.stringify({ id: 7, amount_cents: 123450, currency: "EUR", customer: { locale: "de-DE" }, created: 1577934245000 });
const enc = new TextEncoder();
const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
const signature = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(raw)));
const header = "sha256=" + Array.from(signature, (b) => b.toString(16).padStart(2, "0")).join("");
const given = Uint8Array.from(header.slice(7).match(/../g), (h) => parseInt(h, 16));
if (!(await crypto.subtle.verify("HMAC", key, given, enc.encode(raw)))) throw new Error("bad signature");
const order = JSON.parse(raw);
const amount = order.amount_cents / 100;
const when = new Date(order.created);
return {
  id: order.id,
  amount: new Intl.NumberFormat(order.customer.locale, { style: "currency", currency: order.currency }).format(amount),
  others: [
    new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format(amount),
    new Intl.NumberFormat("ja-JP", { style: "currency", currency: "JPY" }).format(amount),
    amount.toLocaleString("fr-FR", { style: "currency", currency: "EUR" }),
  ],
  date: when.toLocaleDateString(order.customer.locale, { timeZone: "Europe/Berlin", dateStyle: "long" }),
  time: when.toLocaleTimeString("en-US", { timeZone: "America/New_York", timeStyle: "short" }),
  items: new Intl.ListFormat("en", { type: "conjunction" }).format(["a book", "a pen", "ink"]),
  plural: ["zero", 1, 2, 5].map((n) => new Intl.PluralRules("en-US").select(Number(n) || 0)),
  ago: new Intl.RelativeTimeFormat("en", { numeric: "auto" }).format(-1, "day"),
  sorted: ["Zoë", "zebra", "Äpfel", "apple"].sort(new Intl.Collator("de").compare),
};
