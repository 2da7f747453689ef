/**
 * Build locks: while a build runs it holds a lock, an empty file
 * `<build work dir>/locks/<owner tag>-<random>` (src/util/owner.ts), made
 * before the build looks at anything under the work dir and removed when it
 * ends. A build whose process was killed leaves its lock behind, and the
 * owner tag says it is stale. Whoever removes what builds use (scratch
 * dirs, snapshots, unpacked bases: ./stale-scratch.ts, ./snapshots.ts)
 * does so only while no live lock exists.
 */
import { readdir, rm, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { mkdirPrivate, PRIVATE_FILE_MODE } from '../util/fs.ts'
import { ownerGone, ownerTag } from '../util/owner.ts'
import type { Builder } from './types.ts'

const LOCKS = 'locks'

export interface BuildLock {
  /** Removes the lock; safe to call twice. */
  release: () => Promise<void>
}

export async function holdBuildLock (workDir: string): Promise<BuildLock> {
  const dir = join(workDir, LOCKS)
  await mkdirPrivate(dir)
  const file = join(dir, `${ownerTag()}-${randomBytes(6).toString('hex')}`)
  await writeFile(file, '', { flag: 'wx', mode: PRIVATE_FILE_MODE })
  return { release: async () => { await rm(file, { force: true }) } }
}

/** Whether a live build holds a lock on this work dir; stale locks found on the way are removed. */
export async function buildRunning (workDir: string): Promise<boolean> {
  const dir = join(workDir, LOCKS)
  let live = false
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (ownerGone(name)) await rm(join(dir, name), { force: true })
    else live = true
  }
  return live
}

/** The same builder, each build holding a lock on `workDir` from start to end. */
export function lockingBuilder (builder: Builder, workDir: string): Builder {
  const locked = async <T>(work: () => Promise<T>): Promise<T> => {
    const lock = await holdBuildLock(workDir)
    try {
      return await work()
    } finally {
      await lock.release()
    }
  }
  const { baseEnvs } = builder
  return {
    build: async (plan, options) => await locked(async () => await builder.build(plan, options)),
    ...(baseEnvs !== undefined ? { baseEnvs: async (plan, options) => await locked(async () => await baseEnvs(plan, options)) } : {})
  }
}
