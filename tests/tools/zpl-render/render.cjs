// Test-only: render ZPL to PNG offline with zpl-renderer-js (Zebrash compiled to wasm).
//
//   node render.cjs IN.zpl OUT.png [widthMm heightMm dpmm]
//   node render.cjs --batch LIST      one job a line: IN.zpl OUT.png widthMm heightMm dpmm
//
// A ZPL file holding several formats (^XA ... ^XZ) gives one PNG per format: the first is
// OUT.png, the next OUT-2.png, OUT-3.png ... Batch mode pays Node and wasm start-up once.
// Exit status 0 only when every job rendered; errors go to stderr, timings too.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { ready } = require("zpl-renderer-js");

function jobsFromArgs(argv) {
  if (argv[0] === "--batch") {
    if (argv.length !== 2) throw new Error("usage: render.cjs --batch LIST");
    return fs.readFileSync(argv[1], "utf8").split("\n").map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#")).map((l) => l.split(/\s+/));
  }
  if (argv.length < 2) throw new Error("usage: render.cjs IN.zpl OUT.png [widthMm heightMm dpmm]");
  return [argv];
}

function outName(out, i) {
  if (i === 0) return out;
  const ext = path.extname(out);
  return `${out.slice(0, out.length - ext.length)}-${i + 1}${ext}`;
}

(async () => {
  const jobs = jobsFromArgs(process.argv.slice(2));
  const t0 = Date.now();
  const { api } = await ready;
  const t1 = Date.now();
  for (const [inp, out, w = "101.6", h = "152.4", d = "8"] of jobs) {
    const labels = await api.zplToBase64MultipleAsync(fs.readFileSync(inp, "utf8"), +w, +h, +d);
    if (!Array.isArray(labels) || labels.length === 0) throw new Error(`${inp}: nothing rendered`);
    labels.forEach((b64, i) => fs.writeFileSync(outName(out, i), Buffer.from(b64, "base64")));
  }
  console.error(`zpl-render: ${jobs.length} file(s), init ${t1 - t0} ms, render ${Date.now() - t1} ms`);
  process.exit(0);  // the Go wasm runtime keeps the event loop alive
})().catch((e) => { console.error("zpl-render FAILED:", e && e.message ? e.message : e); process.exit(1); });
