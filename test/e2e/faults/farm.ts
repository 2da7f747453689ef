/**
 * What the fault and relay tests share: kiln processes (as uid 65534) in
 * the namespaces of test/helpers/netns.ts, data dirs that trust every peer
 * (a closed test network), and the recipe contexts they build.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { isRoot } from '../../helpers/unprivileged.ts'
import { makeContext } from '../../helpers/context.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { haveTools } from '../../helpers/tools.ts'
import type { Proc } from '../../helpers/kiln-procs.ts'

/**
 * Whether namespaces can be made here: root plus ip, nft, tc and setpriv. Not root skips visibly
 * (a developer's shell); under CI=true (run as root) a missing tool fails, as haveTools does.
 */
export function canMakeNamespaces (): boolean {
  if (!isRoot()) {
    if (process.env.CI === 'true') throw new Error('CI=true but the tests do not run as root: network namespaces need root')
    console.warn('skipping: network namespaces need root')
    return false
  }
  return haveTools('ip', 'nft', 'tc', 'setpriv')
}

/** A data dir under the user's work dir that trusts everyone. */
export function openDataDir (u: Unprivileged, name: string): string {
  const d = join(u.work, name)
  mkdirSync(join(d, 'trust'), { recursive: true, mode: 0o700 })
  writeFileSync(join(d, 'trust', 'trust.yaml'), 'version: 1\nopen: true\n', { mode: 0o600 })
  chmodSync(d, 0o700)
  u.give(d)
  return d
}

/** A kiln.yaml for the user. */
export function configFile (u: Unprivileged, name: string, text: string): string {
  const f = join(u.work, name)
  writeFileSync(f, text)
  u.give(f)
  return f
}

/** A FROM scratch + COPY context (no sandbox needed): `payload` is what the one layer holds. */
export function copyContext (u: Unprivileged, name: string, payload: Buffer | string): string {
  return makeContext(u, { Dockerfile: 'FROM scratch\nCOPY payload /payload\n', payload }, {}, name)
}

/** The plain TCP address an agent on the lab network prints (not its /tls twin, not a relayed one). */
export async function labAddress (p: Proc, ip: string, ms = 180_000): Promise<string> {
  const re = new RegExp(`listening: (/ip4/${ip.replace(/\./g, '\\.')}/tcp/\\d+/p2p/\\S+)`)
  return (await p.waitFor(re, ms))[1] as string
}
