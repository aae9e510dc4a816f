/**
 * Prints vitest's JSON report as one closing line, "N passed, N failed, N skipped",
 * the form CI reads, and exits non-zero when anything failed or nothing ran.
 */
import { readFileSync } from "node:fs";

const file = process.argv[2] ?? ".local/vitest-report.json";
const report = JSON.parse(readFileSync(file, "utf8")) as {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numTotalTests: number;
  testResults: { status: string; name: string; message?: string }[];
};
const failedFiles = report.testResults.filter((result) => result.status === "failed" && result.message);
for (const result of failedFiles) console.log(`failed to run: ${result.name}: ${result.message?.split("\n")[0]}`);
console.log(`${report.numPassedTests} passed, ${report.numFailedTests} failed, ${report.numPendingTests + report.numTodoTests} skipped`);
process.exit(report.numFailedTests > 0 || failedFiles.length > 0 || report.numTotalTests === 0 ? 1 : 0);
