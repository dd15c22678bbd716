// expect: succeeded -
// result: ["1.234,50\u00a0€", "02.01.2020", "Thu Jan 02 2020 15:04:05 GMT+0000 (UTC)", "10:04 AM", "Januar", -60, "Thursday, January 2, 2020"]
// Intl and time zones come from data compiled into the binary: formatting
// in any zone reads no file, so it runs under the host's seccomp filter.
const d = new Date(Date.UTC(2020, 0, 2, 15, 4, 5));
return [
  new Intl.NumberFormat("de-DE", { style: "currency", currency: "EUR" }).format(1234.5),
  new Intl.DateTimeFormat("de-DE", { timeZone: "Europe/Berlin", day: "numeric", month: "numeric", year: "numeric" }).format(d),
  d.toString(),
  d.toLocaleTimeString("en-US", { timeZone: "America/New_York", timeStyle: "short" }),
  new Intl.DateTimeFormat("de", { month: "long", timeZone: "Australia/Lord_Howe" }).format(d),
  (() => { const b = new Intl.DateTimeFormat("en", { timeZone: "Europe/Berlin", hour: "numeric", hourCycle: "h23" }).format(d); return (15 - Number(b)) * 60; })(),
  d.toLocaleDateString("en-US", { dateStyle: "full" }),
];
