#!/usr/bin/env node
// `npm run bench`: runs each benchmark script in test/bench/ (or those named
// on the command line, e.g. `npm run bench -- import`) one after another, so
// they do not compete for the machine's cores. Each prints its own ratios.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

const dir = import.meta.dirname
const wanted = process.argv.slice(2)
const scripts = readdirSync(dir).filter(f => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.startsWith('_'))
  .filter(f => wanted.length === 0 || wanted.some(w => f.startsWith(w)))
  .sort()
let failed = 0
for (const s of scripts) {
  console.log(`\n=== bench: ${s}`)
  const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', join(dir, s)], { stdio: 'inherit' })
  if (r.status !== 0) { failed++; console.log(`=== ${s} failed (exit ${r.status ?? r.signal})`) }
}
process.exit(failed > 0 ? 1 : 0)
