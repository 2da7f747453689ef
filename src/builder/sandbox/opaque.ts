/**
 * Which dirs of an overlay upper dir are opaque. Node has no xattr API, so
 * the kernel is asked: the upper dir is mounted read-only as the top lower
 * layer over a "canary" layer that holds, for each candidate dir, one file;
 * the canary shows through a dir unless that dir is opaque. One `unshare
 * -Urm` process for all the candidates of a step.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SandboxError } from '../errors.ts'
import { requireTool } from './ns-script.ts'
import { HOST_ENV } from './host-tools.ts'
import { runProcess } from './process.ts'
import { removeTree } from './scratch.ts'
import { scratchPrefix } from '../../util/owner.ts'

const CANARY = '.kiln-opaque-canary'

export async function findOpaqueDirs (upper: string, dirs: string[]): Promise<Set<string>> {
  if (dirs.length === 0) return new Set()
  const scratch = await mkdtemp(join(tmpdir(), scratchPrefix('kiln-opq-')))
  try {
    const canary = join(scratch, 'canary')
    const merged = join(scratch, 'merged')
    await mkdir(merged)
    for (const d of dirs) {
      await mkdir(join(canary, d), { recursive: true })
      await writeFile(join(canary, d, CANARY), '')
    }
    const script = `cd "$1" && shift && ${requireTool('mount')} -t overlay overlay -o "lowerdir=$1:$2,userxattr" "$3" && shift 3 && for d in "$@"; do [ -e "merged/$d/${CANARY}" ] || printf '%s\\0' "$d"; done`
    let out = ''
    let err = ''
    const r = await runProcess({
      file: requireTool('unshare'),
      args: ['-Urm', '--', requireTool('sh'), '-c', script, 'kiln-opaque', scratch, upper, canary, merged, ...dirs],
      env: { ...HOST_ENV },
      onOutput: (s, c) => { if (s === 'stdout') out += Buffer.from(c).toString(); else err += Buffer.from(c).toString() }
    })
    if (r.exitCode !== 0) throw new SandboxError(`cannot read overlay opaque markers: ${err.trim()}`)
    return new Set(out.split('\0').filter(s => s !== ''))
  } finally {
    await removeTree(scratch)
  }
}
