/** Prints vitest's JSON report as one plain closing line: "tests: N passed, N failed". */
import { readFileSync } from 'node:fs';

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
}

const r = JSON.parse(readFileSync('.vitest/results.json', 'utf8')) as Report;
if (r.numPassedTests + r.numFailedTests === 0) {
  process.stderr.write('tests: no test ran\n');
  process.exit(1);
}
const skipped = r.numPendingTests + r.numTodoTests;
process.stdout.write(
  `tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}\n`,
);
process.exit(r.numFailedTests > 0 ? 1 : 0);
