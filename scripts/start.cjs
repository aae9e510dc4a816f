// `npm start`: runs the operator from its TypeScript sources (src/bin/wa-operator.ts).
// A Node that cannot strip types cannot even load that file to be told it is too old,
// so this plain script says so first, in one line; a Node that can strip types gets
// the version check of src/bin/wa-operator.ts itself.
const { engines } = require("../package.json");
if (!process.features.typescript) {
  console.error(`wa-operator needs Node.js ${engines.node} (package.json engines), but ${process.execPath} is ${process.version}, which cannot run TypeScript; install a newer Node.js (https://nodejs.org) or run PATH=$(hack/node.sh):$PATH npm start`);
  process.exitCode = 1;
} else {
  import("../src/bin/wa-operator.ts");
}
