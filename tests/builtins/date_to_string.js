// expect: succeeded -
// result: "Wed Jan 01 2020 00:00:00 GMT+0000"
// Local-time formatting reads the time zone (glibc opens /etc/localtime).
const s = new Date(2020, 0, 1).toString();
return s.slice(0, 33);
