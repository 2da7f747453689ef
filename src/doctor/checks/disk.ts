/**
 * The data dir's filesystem: free space, free inodes, and whether it is a
 * network filesystem (which breaks sqlite's locks, overlay upper dirs and
 * xattrs, and makes every small-file write a round trip).
 */
import { dirname, resolve } from 'node:path'
import { DISK_PROBLEM_BYTES, DISK_WARN_BYTES, INODES_PROBLEM_FRACTION, INODES_WARN_FRACTION, NETWORK_FS_MAGIC, NETWORK_FS_TYPES } from '../constants.ts'
import type { Check, CheckResult, FsStats, SystemAccess } from '../types.ts'

/** Sizes in GiB: the unit disk space is discussed in on a cluster. */
function gib (bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`
}

/** statfs of the path, or of its nearest existing ancestor (a data dir not created yet). */
async function statNearest (system: SystemAccess, path: string): Promise<{ path: string, stats: FsStats }> {
  let p = resolve(path)
  for (;;) {
    try {
      return { path: p, stats: await system.statfs(p) }
    } catch (err) {
      if (dirname(p) === p) throw err
      p = dirname(p)
    }
  }
}

/** The filesystem type /proc/mounts gives for the mount holding path (the longest mount point that contains it). */
export function mountTypeOf (mounts: string, path: string): { mountPoint: string, type: string } | undefined {
  let best: { mountPoint: string, type: string } | undefined
  for (const line of mounts.split('\n')) {
    const [, rawPoint, type] = line.split(' ')
    if (rawPoint === undefined || type === undefined) continue
    const mountPoint = rawPoint.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)))
    const inside = mountPoint === '/' || path === mountPoint || path.startsWith(`${mountPoint}/`)
    if (inside && (best === undefined || mountPoint.length >= best.mountPoint.length)) best = { mountPoint, type }
  }
  return best
}

export const checkDisk: Check = async ({ config, system }) => {
  let found: { path: string, stats: FsStats }
  try {
    found = await statNearest(system, config.dataDir)
  } catch (err) {
    return [{ id: 'disk.space', title: 'data dir disk space', status: 'problem', detail: `cannot statfs ${config.dataDir}: ${(err as Error).message}`, fix: 'check that the data dir (--data-dir, KILN_DATA_DIR) is on a mounted filesystem you can write' }]
  }
  const { stats } = found
  const out: CheckResult[] = []
  const free = stats.bavail * stats.bsize
  const where = `${config.dataDir}${found.path === resolve(config.dataDir) ? '' : ` (not created yet; checked ${found.path})`}`
  const space = `${gib(free)} free of ${gib(stats.blocks * stats.bsize)} at ${where}`
  const spaceFix = 'free space, set store.quota (and run kiln store prune), or move the data dir to a bigger local disk'
  out.push(free < DISK_PROBLEM_BYTES
    ? { id: 'disk.space', title: 'data dir disk space', status: 'problem', detail: space, fix: spaceFix }
    : free < DISK_WARN_BYTES
      ? { id: 'disk.space', title: 'data dir disk space', status: 'warn', detail: space, fix: spaceFix }
      : { id: 'disk.space', title: 'data dir disk space', status: 'ok', detail: space })

  if (stats.files === 0) {
    out.push({ id: 'disk.inodes', title: 'data dir inodes', status: 'skip', detail: 'the filesystem allocates inodes dynamically' })
  } else {
    const fraction = stats.ffree / stats.files
    const detail = `${stats.ffree} of ${stats.files} inodes free (${(fraction * 100).toFixed(1)}%)`
    const fix = 'unpacked image roots are many small files: clean up the filesystem or move the data dir'
    out.push(fraction < INODES_PROBLEM_FRACTION
      ? { id: 'disk.inodes', title: 'data dir inodes', status: 'problem', detail, fix }
      : fraction < INODES_WARN_FRACTION
        ? { id: 'disk.inodes', title: 'data dir inodes', status: 'warn', detail, fix }
        : { id: 'disk.inodes', title: 'data dir inodes', status: 'ok', detail })
  }

  const byMagic = NETWORK_FS_MAGIC.get(stats.type)
  const mounts = await system.readText('/proc/mounts')
  const mount = mounts === undefined ? undefined : mountTypeOf(mounts, found.path)
  const byMount = mount !== undefined && NETWORK_FS_TYPES.has(mount.type) ? mount.type : undefined
  const network = byMount ?? byMagic
  out.push(network !== undefined
    ? {
        id: 'disk.fstype',
        title: 'data dir filesystem',
        status: 'warn',
        detail: `${where} is on ${network}${mount !== undefined ? ` (mounted at ${mount.mountPoint})` : ''}: a network filesystem breaks sqlite locks, overlay upper dirs and xattrs`,
        fix: 'put the data dir on a local disk (node-local /scratch, /tmp, /var/tmp or /dev/shm for a Slurm job): --data-dir or KILN_DATA_DIR'
      }
    : { id: 'disk.fstype', title: 'data dir filesystem', status: 'ok', detail: `${mount?.type ?? `f_type 0x${stats.type.toString(16)}`}: a local filesystem` })
  return out
}
