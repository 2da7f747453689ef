/**
 * Test fixtures for the builder: a tiny root filesystem with a statically
 * linked busybox, made in a temp dir by the calling user (so it can be an
 * overlay lower dir inside a user namespace).
 */
import { copyFileSync, mkdirSync, readFileSync, readdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { findTool } from '../../helpers/tools.ts'

const APPLETS = ['sh', 'echo', 'cat', 'env', 'pwd', 'sleep', 'rm', 'mkdir', 'ls', 'nc', 'id', 'touch', 'true', 'false', 'setsid', 'grep', 'tr', 'chown', 'chgrp', 'mknod', 'su', 'printf', 'sync']

export function makeBusyboxRoot (dir: string): string {
  const busybox = findTool('busybox') ?? '/bin/busybox'
  mkdirSync(join(dir, 'bin'), { recursive: true })
  mkdirSync(join(dir, 'etc'))
  mkdirSync(join(dir, 'tmp'))
  copyFileSync(busybox, join(dir, 'bin/busybox'))
  for (const a of APPLETS) symlinkSync('busybox', join(dir, 'bin', a))
  return dir
}

/** Pids of live host processes whose command line contains marker. */
export function processesWith (marker: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      if (cmd.includes(marker)) pids.push(Number(entry))
    } catch { /* exited */ }
  }
  return pids
}

/** Host mounts whose mount point lies under dir. */
export function mountsUnder (dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(l => l.split(' ')[4]?.startsWith(dir) === true)
}
