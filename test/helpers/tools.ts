/**
 * External tools the tests use (skopeo, umoci, bwrap...). On a developer
 * machine a missing tool makes its tests skip, visibly; under CI=true a
 * missing tool is a failure, because CI is meant to have installed it.
 */
import { execFileSync } from 'node:child_process'

const cache = new Map<string, string | undefined>()

/** Absolute path of a command on PATH (or /usr/sbin, /sbin), or undefined. */
export function findTool (name: string): string | undefined {
  if (cache.has(name)) return cache.get(name)
  let found: string | undefined
  try {
    const path = `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`
    found = execFileSync('sh', ['-c', `command -v "$0"`, name], { env: { ...process.env, PATH: path }, encoding: 'utf8' }).trim() || undefined
  } catch { found = undefined }
  cache.set(name, found)
  return found
}

/**
 * Whether all the tools are present. Use with `describe.skipIf(!haveTools(...))`.
 * Under CI=true it throws instead of returning false, failing the test file.
 */
export function haveTools (...names: string[]): boolean {
  const missing = names.filter(n => findTool(n) === undefined)
  if (missing.length === 0) return true
  if (process.env.CI === 'true') throw new Error(`CI=true but required tool(s) missing: ${missing.join(', ')} (install them in .ci/run)`)
  console.warn(`skipping: tool(s) not installed: ${missing.join(', ')}`)
  return false
}
