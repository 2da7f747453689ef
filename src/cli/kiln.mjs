#!/usr/bin/env node
// The `kiln` launcher. kiln runs on Node >= 22 (libp2p needs it) and its
// TypeScript sources run through Node's type stripping. On an older Node
// (a cluster's default is often 20) it re-executes itself with the Node 24
// that the project pins in node_modules, so `kiln` works from any shell.
// Plain JavaScript that Node 20 can parse: keep it that way.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import module from 'node:module'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const major = Number(process.versions.node.split('.')[0])

if (major < 22) {
  const pinned = join(here, '..', '..', 'node_modules', 'node', 'bin', 'node')
  if (!existsSync(pinned)) {
    process.stderr.write(`kiln: error: Node ${process.versions.node} is too old (kiln needs Node >= 22) and the pinned Node 24 is not installed\nhint: run \`npm ci\` in ${join(here, '..', '..')}\n`)
    process.exit(1)
  }
  const child = spawn(pinned, ['--disable-warning=ExperimentalWarning', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { child.kill(sig) })
  child.on('exit', (code, signal) => {
    // Die of the same signal, as the child did (our forwarding handler must not catch it).
    if (signal) { process.removeAllListeners(signal); process.kill(process.pid, signal) }
    else process.exit(code ?? 1)
  })
} else {
  // `kiln ... | head` closes the pipe early: that is not an error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err) => { if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0); else throw err })
  }
  // Stripping types from and compiling kiln's modules is most of what a short
  // command costs (a warm build: ~1.1 s -> ~0.25 s): keep the result in the
  // user's cache dir (entries are keyed by content, so an edit never runs stale
  // code). NODE_COMPILE_CACHE, when set, is used by Node itself instead.
  if (process.env.NODE_COMPILE_CACHE === undefined && module.enableCompileCache !== undefined) {
    const cacheHome = process.env.XDG_CACHE_HOME || (homedir() ? join(homedir(), '.cache') : undefined)
    if (cacheHome) { try { module.enableCompileCache(join(cacheHome, 'kiln', 'node-compile-cache')) } catch { /* no cache: slower, not wrong */ } }
  }
  process.removeAllListeners('warning')
  process.on('warning', (w) => { if (w.name !== 'ExperimentalWarning') process.stderr.write(`${w.name}: ${w.message}\n`) })
  const { main } = await import('./main.ts')
  const code = await main(process.argv)
  // The command is done (servers return from main only after their signal).
  // Exit now rather than wait for timers libp2p leaves behind after stop
  // (about 1 s); stdout and stderr are synchronous on Linux, nothing is lost.
  process.exit(code)
}
