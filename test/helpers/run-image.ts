/**
 * Looking inside a built image as the unprivileged user: `unpackAs` unpacks
 * an OCI layout's tag with `umoci --rootless` into a fresh bundle under the
 * user's work dir; `runAs` runs a command (default: the image's entrypoint
 * and cmd) in the bundle's rootfs with chroot in a user namespace and the
 * image's environment and working dir. Both fail the test on a non-zero exit.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'vitest'
import type { Unprivileged } from './unprivileged.ts'

export interface Bundle {
  /** The unpacked root file system. */
  rootfs: string
  process: { args: string[], env: string[], cwd: string }
}

export function unpackAs (u: Unprivileged, layoutDir: string, tag: string): Bundle {
  const bundle = join(u.work, `bundle-${tag}-${Math.random().toString(36).slice(2)}`)
  const unpack = u.exec('umoci', ['unpack', '--rootless', '--image', `${layoutDir}:${tag}`, bundle])
  expect(unpack.status, unpack.stderr).toBe(0)
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process: Bundle['process'] }
  return { rootfs: join(bundle, 'rootfs'), process: spec.process }
}

/** Runs `args` (default the image's own) in the bundle; returns stdout. */
export function runAs (u: Unprivileged, bundle: Bundle, args: string[] = bundle.process.args): string {
  const r = u.exec('unshare', ['-Ur', '--root', bundle.rootfs, '--wd', bundle.process.cwd, 'env', '-i', ...bundle.process.env, ...args])
  expect(r.status, r.stderr).toBe(0)
  return r.stdout
}
