/**
 * Sweeping a scratch dir whose entries carry no owner tag (their names are
 * another module's to choose: the gateway's upload session files are
 * UUIDs). Terms: a *claim* is an empty file `.claims/<owner tag>` in the dir
 * (src/util/owner.ts), held by each process that keeps scratch there; it
 * is *live* while its process runs. Claiming the dir removes the claims of
 * processes that are gone, then, if no live claim of another process
 * remains, every other entry of the dir (nobody alive can be using it),
 * and adds this process's claim. A claim needs no release: it goes stale
 * with its process.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ownerGone, ownerTag } from './owner.ts'

const CLAIMS = '.claims'

/** Claims `dir` for this process; returns the paths it removed as stale. */
export async function claimScratchDir (dir: string): Promise<string[]> {
  const claims = join(dir, CLAIMS)
  await mkdir(claims, { recursive: true })
  const self = ownerTag()
  let othersAlive = false
  for (const name of await readdir(claims)) {
    if (name === self) continue
    if (ownerGone(name)) await rm(join(claims, name), { force: true })
    else othersAlive = true
  }
  const removed: string[] = []
  if (!othersAlive) {
    for (const name of await readdir(dir)) {
      if (name === CLAIMS) continue
      await rm(join(dir, name), { recursive: true, force: true }).then(() => { removed.push(join(dir, name)) }, () => {})
    }
  }
  await writeFile(join(claims, self), '')
  return removed
}
