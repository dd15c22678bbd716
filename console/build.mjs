// Builds the console into the folder citadel-server embeds. The output is
// committed; `.ci/run` rebuilds it and fails when the result differs, so
// what ships is what this source produces.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

// CONSOLE_OUT builds elsewhere (CI compares that with what is committed).
const out = process.env.CONSOLE_OUT
  ? process.env.CONSOLE_OUT.replace(/\/?$/, "/")
  : new URL("../crates/citadel-server/console/", import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { app: "src/main.jsx" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome110", "firefox110", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: out,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
});
copyFileSync("src/index.html", out + "index.html");
copyFileSync("src/style.css", out + "style.css");
copyFileSync("node_modules/uplot/dist/uPlot.min.css", out + "uplot.css");
