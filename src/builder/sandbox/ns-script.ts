/**
 * The shell script run as uid 0 of a fresh user + mount namespace by the
 * namespace drivers: it mounts the overlay, and (for `unshare`) sets up
 * /proc and /dev and enters the root. The step's argv arrives as "$@", so
 * nothing the recipe says is ever parsed by this script.
 */

/**
 * Where `unshare` finds the host's static busybox in the root's private /dev,
 * to set the step's environment (./step-env.ts). Named `busybox`: busybox
 * picks its applet by the name it is run as.
 */
export const NS_ENV_SETTER = '/dev/.kiln/busybox'
import { SANDBOX_DEVICES } from '../constants.ts'
import { SandboxUnavailableError } from '../errors.ts'
import { hostTool, shq } from './host-tools.ts'
import type { Scratch } from './scratch.ts'

export function requireTool (name: string): string {
  const path = hostTool(name)
  if (path === undefined) throw new SandboxUnavailableError(`${name} is not installed on this node`)
  return path
}

/** Mounts the overlay (when there is one) and creates the working directory. */
export function mountScript (scratch: Scratch, cwd: string): string[] {
  const mount = requireTool('mount')
  const mkdir = requireTool('mkdir')
  const lines = ['set -e']
  if (scratch.overlayOptions !== undefined) {
    lines.push(`${mount} -t overlay overlay -o ${shq(scratch.overlayOptions)} ${shq(scratch.rootDir)}`)
    lines.push(`${mkdir} -p ${shq(scratch.rootDir + cwd)}`)
  }
  return lines
}

/**
 * /proc, a private /dev with the usual devices and the env setter
 * (NS_ENV_SETTER, bound from the host's static `busybox`), the step's
 * extra mounts, the host's resolver when networked, then chroot + chdir + exec of "$@".
 * A `user` other than 0:0 gets a nested user namespace that maps the
 * namespace's root to it, entered by the same unshare that chroots.
 */
export function enterScript (scratch: Scratch, cwd: string, network: boolean, busybox: string, user?: { uid: number, gid: number }): string[] {
  const mount = requireTool('mount')
  const ln = requireTool('ln')
  const mkdir = requireTool('mkdir')
  const unshare = requireTool('unshare')
  const m = shq(scratch.rootDir)
  const lines = [
    `${mount} -t proc -o nosuid,nodev,noexec proc ${m}/proc`,
    `${mount} -t tmpfs -o mode=755,nosuid tmpfs ${m}/dev`,
    `for d in ${SANDBOX_DEVICES.join(' ')}; do : > ${m}/dev/$d; ${mount} --bind /dev/$d ${m}/dev/$d; done`,
    `${ln} -s /proc/self/fd ${m}/dev/fd`,
    `${ln} -s /proc/self/fd/0 ${m}/dev/stdin`,
    `${ln} -s /proc/self/fd/1 ${m}/dev/stdout`,
    `${ln} -s /proc/self/fd/2 ${m}/dev/stderr`,
    `${mkdir} ${m}/dev/.kiln && : > ${m}${NS_ENV_SETTER} && ${mount} --bind ${shq(busybox)} ${m}${NS_ENV_SETTER}`,
    `${mkdir} ${m}/dev/shm ${m}/dev/pts`,
    `${mount} -t tmpfs -o mode=1777,nosuid,nodev tmpfs ${m}/dev/shm`
  ]
  for (const mt of scratch.mounts) {
    const at = `${m}${shq(mt.target)}`
    if (mt.kind === 'tmpfs') lines.push(`${mount} -t tmpfs -o ${shq(`mode=755,nosuid,nodev${mt.sizeBytes !== undefined ? `,size=${mt.sizeBytes}` : ''}`)} tmpfs ${at}`)
    else {
      lines.push(`${mount} --bind ${shq(mt.source)} ${at}`)
      if (mt.readOnly) lines.push(`${mount} -o remount,bind,ro ${at}`)
    }
  }
  if (network) {
    for (const f of ['/etc/resolv.conf', '/etc/hosts']) {
      lines.push(`if [ -f ${f} ] && [ -f ${m}${f} ]; then ${mount} --bind ${f} ${m}${f}; fi`)
    }
  }
  const mapUser = user === undefined || (user.uid === 0 && user.gid === 0) ? '' : `--map-user=${user.uid} --map-group=${user.gid} `
  lines.push(`exec ${unshare} ${mapUser}--root=${m} --wd=${shq(cwd)} -- "$@"`)
  return lines
}
