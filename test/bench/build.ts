/**
 * Build benchmark: the reference recipe (shared/bench/Dockerfile.reference,
 * context from make-context.sh, busybox base from make-busybox-base.sh)
 * built cold and warm by `kiln build` and by `buildah bud --isolation chroot
 * --layers` (vfs storage in temp dirs), in the same run; prints seconds and
 * kiln/buildah ratios. Goals: cold <= 0.5x, warm <= 0.3x.
 *
 * Run: npm run bench -- build   (buildah needs root; without it, kiln only)
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const REPO = resolve(import.meta.dirname, '../..')
const BENCH = resolve(REPO, '../shared/bench')
// buildah wants a lowercase path in oci: references: no mkdtemp suffix
const dir = join(tmpdir(), `kiln-bench-build-${process.pid}`)
mkdirSync(dir)

function timed (label: string, file: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = performance.now()
  const r = spawnSync(file, args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  const s = (performance.now() - t0) / 1000
  if (r.status !== 0) throw new Error(`${label} failed (${String(r.status)}): ${r.stderr.slice(-2000)}`)
  console.log(`${label.padEnd(16)} ${s.toFixed(2)} s`)
  return s
}

try {
  const layout = join(dir, 'layout')
  const ctx = join(dir, 'ctx')
  execFileSync('sh', [join(BENCH, 'make-busybox-base.sh'), layout], { stdio: 'ignore' })
  execFileSync('sh', [join(BENCH, 'make-context.sh'), ctx], { stdio: 'ignore' })
  const base = `oci:${layout}:base`

  const kilnEnv = { ...process.env, KILN_DATA_DIR: join(dir, 'kiln-data') }
  const kiln = [join(REPO, 'src/cli/kiln.mjs'), 'build', '--build-arg', `BASE=${base}`, '-t', 'bench/ref:1', ctx]
  const node = join(REPO, 'node_modules/.bin/node')
  const kilnCold = timed('kiln cold', node, kiln, kilnEnv)
  const kilnWarm = timed('kiln warm', node, kiln, kilnEnv)

  const canBuildah = process.getuid?.() === 0 && spawnSync('buildah', ['--version']).status === 0
  if (!canBuildah) {
    console.log('buildah comparison skipped (needs buildah, run as root)')
  } else {
    const root = join(dir, 'buildah-root')
    const runroot = join(dir, 'buildah-runroot')
    const buildah = ['--root', root, '--runroot', runroot, '--storage-driver', 'vfs', 'bud', '--isolation', 'chroot', '--layers', '--build-arg', `BASE=${base}`, '-t', 'bench/ref:1', '-f', join(ctx, 'Dockerfile'), ctx]
    const bCold = timed('buildah cold', 'buildah', buildah)
    const bWarm = timed('buildah warm', 'buildah', buildah)
    spawnSync('buildah', ['--root', root, '--runroot', runroot, '--storage-driver', 'vfs', 'rm', '--all'])
    console.log(`ratio cold kiln/buildah ${(kilnCold / bCold).toFixed(2)} (goal <= 0.5)`)
    console.log(`ratio warm kiln/buildah ${(kilnWarm / bWarm).toFixed(2)} (goal <= 0.3)`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
