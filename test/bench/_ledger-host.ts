/**
 * The child of the ledger benchmark (test/bench/ledger.ts), run as the
 * unprivileged user: unpacks the Debian base, then times RUN steps in the
 * bwrap sandbox on an overlay of it, with and without the ownership ledger,
 * alternating so both see the same load, and the builder's own ledger work
 * (the base layer's owners read from its tar headers, the state file
 * written, the ledger applied). The apt step installs python3-minimal from
 * packages downloaded once before (needs the Debian mirror), so the timed
 * runs are offline. Prints one JSON line.
 *
 * Args: BASE_TAR WORK_DIR ROUNDS
 */
import { spawnSync } from 'node:child_process'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { applyLedger, composeOwners, ledgerInput, tarOwners } from '../../src/builder/owner-ledger.ts'
import { createBwrapSandbox } from '../../src/builder/sandbox/bwrap.ts'
import { removeTree } from '../../src/builder/sandbox/index.ts'
import { diffUpper } from '../../src/builder/snapshotter/dirs.ts'

const [baseTar = '', work = '', roundsArg = '5'] = process.argv.slice(2)
const rounds = Number(roundsArg)
const lower = join(work, 'lower')
await mkdir(lower, { recursive: true })
// Device nodes cannot be made unprivileged: tar says so and goes on.
spawnSync('tar', ['-xf', baseTar, '-C', lower, '--no-same-owner', '--no-same-permissions', '--exclude=./dev/*'], { stdio: 'ignore' })

let t = performance.now()
const owners = composeOwners([await tarOwners(createReadStream(baseTar))])
const readHeadersMs = performance.now() - t
t = performance.now()
const input = await ledgerInput(owners, [lower])
const stateFileMs = performance.now() - t

const sb = createBwrapSandbox()
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
// apt's lists and python3-minimal's packages, downloaded once (the Debian mirror), so that the timed installs run offline.
const debs = join(work, 'debs'); const debsWork = join(work, 'debs-work')
await mkdir(debs); await mkdir(debsWork)
const fetched = await sb.run({ argv: ['/bin/sh', '-c', 'apt-get update -qq && apt-get install -qq -y --download-only --no-install-recommends python3-minimal'], env: { PATH }, network: true, root: { kind: 'overlay', lowers: [lower], upper: debs, work: debsWork } })
if (fetched.exitCode !== 0) throw new Error(`apt-get --download-only failed: exit ${String(fetched.exitCode)}`)
const STEPS: Record<string, string> = { true: 'true', useradd: 'useradd -m researcher && mkdir /data && chown researcher:researcher /data', 'cp -a': 'cp -a /usr/share /srv/share', apt: 'apt-get install -qq -y --no-install-recommends python3-minimal >/dev/null' }
const times: Record<string, Record<string, number[]>> = {}
let applyMs = 0
for (let i = 0; i < rounds; i++) {
  for (const [name, script] of Object.entries(STEPS)) {
    for (const mode of i % 2 === 0 ? ['plain', 'ledger'] : ['ledger', 'plain']) {
      const dir = await mkdtemp(join(work, 'step-'))
      const upper = join(dir, 'upper'); const wk = join(dir, 'work'); const ledger = join(dir, 'ledger')
      for (const d of [upper, wk, ledger]) await mkdir(d)
      if (mode === 'ledger') await writeFile(join(ledger, 'in'), (await ledgerInput(owners, [debs, lower])).text)
      const t0 = performance.now()
      const r = await sb.run({ argv: ['/bin/sh', '-c', script], env: { PATH }, root: { kind: 'overlay', lowers: [debs, lower], upper, work: wk }, ...(mode === 'ledger' ? { ledger } : {}) })
      const ms = performance.now() - t0
      if (r.exitCode !== 0) throw new Error(`${name} (${mode}) failed: exit ${String(r.exitCode)}`)
      ;((times[name] ??= {})[mode] ??= []).push(ms)
      if (mode === 'ledger' && name === 'useradd') {
        const diffed = await diffUpper(upper, [debs, lower])
        const [out, rootdev, stepInput] = [await readFile(join(ledger, 'out'), 'utf8'), await readFile(join(ledger, 'rootdev'), 'utf8'), await ledgerInput(owners, [debs, lower])]
        const t1 = performance.now()
        const entries = await applyLedger(diffed, out, rootdev, stepInput, upper, [debs, lower])
        applyMs = performance.now() - t1
        const data = entries.find(e => e.path === 'data')
        if (data === undefined || !('uid' in data) || data.uid !== 1000) throw new Error('the ledger did not record chown researcher /data')
      }
      // removeTree: overlayfs leaves its work dir unreadable (mode 0).
      await removeTree(dir)
    }
  }
}
await removeTree(work)
console.log(JSON.stringify({ times, readHeadersMs, stateFileMs, stateRecords: input.records.size, applyMs }))
