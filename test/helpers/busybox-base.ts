/**
 * The busybox base image of the build e2e tests: an OCI image layout with one
 * layer holding Debian's static busybox and its applet links, made by the
 * bench's make-busybox-base.sh (needs busybox-static and umoci) and handed to
 * the unprivileged user that builds on it (`oci:<layout>:base`).
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import type { Unprivileged } from './unprivileged.ts'

const MAKE_BASE = join(import.meta.dirname, '../../../shared/bench/make-busybox-base.sh')

/** Writes the layout at `dir` (default `<work>/layout`), tag `base`, owned by the user; returns `dir`. */
export function makeBusyboxBase (u: Unprivileged, dir = join(u.work, 'layout')): string {
  execFileSync('sh', [MAKE_BASE, dir], { stdio: 'ignore' })
  u.give(dir)
  return dir
}
