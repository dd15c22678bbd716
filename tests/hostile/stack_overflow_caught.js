// A caught stack overflow is the script's business; the run goes on.
// expect: succeeded -
// result: "recovered"
function down() { return down() + 1; }
try { down(); } catch (e) { return "recovered"; }
