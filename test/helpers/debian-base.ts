/**
 * The Debian 12 base that the apt tests and the realworld bench build on:
 * `rootfs.tar`, a minbase bookworm made by mmdebstrap from the mirror in
 * /etc/apt/sources.list.d/debian.sources, with no recipe of its own (its
 * users put it in an image with `FROM scratch` + `ADD rootfs.tar /`).
 *
 * It is made once per machine and kept under a stable temp path,
 * TMPDIR/kiln-test-cache/debian-bookworm, because mmdebstrap takes minutes
 * and needs root (`--mode=root`); later runs reuse the tar as it is.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { haveTools } from './tools.ts'

export const DEBIAN_BASE_DIR = join(tmpdir(), 'kiln-test-cache', 'debian-bookworm')

const SOURCES = '/etc/apt/sources.list.d/debian.sources'
const FALLBACK_MIRROR = 'http://deb.debian.org/debian'

function mirror (): string {
  if (!existsSync(SOURCES)) return FALLBACK_MIRROR
  return /^URIs:\s*(\S+)/m.exec(readFileSync(SOURCES, 'utf8'))?.[1] ?? FALLBACK_MIRROR
}

/**
 * Path of the base tar, made when missing; undefined when it is missing
 * and this process is not root (mmdebstrap --mode=root cannot run).
 * The tar appears under its final name only once complete, so an
 * interrupted run leaves no half tar for the next one to reuse.
 */
export function debianBase (): string | undefined {
  const tar = join(DEBIAN_BASE_DIR, 'rootfs.tar')
  if (existsSync(tar)) return tar
  if (process.getuid?.() !== 0) return undefined
  mkdirSync(DEBIAN_BASE_DIR, { recursive: true })
  const partial = join(DEBIAN_BASE_DIR, `rootfs.${process.pid}.tar`)
  try {
    execFileSync('mmdebstrap', ['--quiet', '--variant=minbase', '--mode=root', 'bookworm', partial, mirror()], { stdio: 'ignore', timeout: 900_000 })
    renameSync(partial, tar)
  } finally {
    rmSync(partial, { force: true })
  }
  return tar
}

/**
 * The base for a test file whose tests need `tools` too: undefined (the
 * file's tests skip, with a warning) when a tool is missing or the base is
 * missing and cannot be made here; under CI=true a missing base fails.
 */
export function debianBaseFor (tools: string[]): string | undefined {
  if (!haveTools(...tools)) return undefined
  const base = debianBase()
  if (base === undefined) {
    if (process.env.CI === 'true') throw new Error(`CI=true but no Debian base at ${DEBIAN_BASE_DIR} and not root to make one`)
    console.warn(`skipping: no Debian base at ${DEBIAN_BASE_DIR}, and making one needs root`)
  }
  return base
}
