#!/usr/bin/env node
// Runs the whole vitest suite with its JSON reporter beside the default one,
// then prints one plain summary line that CI reads:
//   tests: N passed, N failed, N skipped
// Exits non-zero if anything failed or no test ran.
import { spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const report = join(tmpdir(), `kiln-vitest-${process.pid}.json`)
const args = ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)]
const vitest = join(import.meta.dirname, '..', 'node_modules', 'vitest', 'vitest.mjs')
const child = spawn(process.execPath, [vitest, ...args], { stdio: 'inherit' })
const code = await new Promise(resolve => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))))

let passed = 0; let failed = 0; let skipped = 0; let suitesFailed = 0
try {
  const r = JSON.parse(readFileSync(report, 'utf8'))
  passed = r.numPassedTests ?? 0
  failed = r.numFailedTests ?? 0
  skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)
  // A file that failed to load counts its failure too.
  suitesFailed = (r.testResults ?? []).filter(f => f.status === 'failed' && (f.assertionResults ?? []).length === 0).length
  rmSync(report, { force: true })
} catch (err) {
  console.error(`could not read the vitest JSON report: ${err.message}`)
  failed = Math.max(failed, 1)
}
failed += suitesFailed
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(code !== 0 || failed > 0 || passed === 0 ? 1 : 0)
