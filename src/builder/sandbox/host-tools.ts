/**
 * Absolute paths of the host programs the drivers run, and the environment
 * they run with. The step's own environment (its PATH) is what the
 * sandboxed processes see, so host tools are always named by absolute path;
 * and the step's environment never reaches a host tool (see ./step-env.ts).
 */
import { accessSync, constants } from 'node:fs'
import { join } from 'node:path'

/**
 * The whole environment of every host program a driver starts (bwrap,
 * unshare, proot, sh, mount): nothing of kiln's own (keys, tokens) and
 * nothing of the recipe's.
 */
export const HOST_ENV: Readonly<Record<string, string>> = Object.freeze({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin' })

const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']
const found = new Map<string, string | undefined>()

export function hostTool (name: string): string | undefined {
  if (found.has(name)) return found.get(name)
  const dirs = [...(process.env.PATH ?? '').split(':').filter(d => d.startsWith('/')), ...SEARCH]
  let path: string | undefined
  for (const dir of dirs) {
    try { accessSync(join(dir, name), constants.X_OK); path = join(dir, name); break } catch { /* next */ }
  }
  found.set(name, path)
  return path
}

/** Single-quotes a string for /bin/sh. */
export function shq (value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`
}
