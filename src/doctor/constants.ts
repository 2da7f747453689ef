/** Thresholds and limits of `kiln doctor`. */

/** Less free space than this in the data dir's filesystem is a problem... */
export const DISK_PROBLEM_BYTES = 1024 ** 3
/** ...and less than this a warning: one base image and a build's layers need a few GiB. */
export const DISK_WARN_BYTES = 10 * 1024 ** 3
/** Free inodes below this fraction are a problem / a warning (unpacked rootfs trees are many small files). */
export const INODES_PROBLEM_FRACTION = 0.01
export const INODES_WARN_FRACTION = 0.05

/** How long a TCP connect to a bootstrap peer or an HTTP Date request may take. */
export const CONNECT_TIMEOUT_MS = 3_000

/** How long a libp2p dial to a relay candidate, identify included, may take. */
export const DIAL_TIMEOUT_MS = 8_000

/** The circuit relay v2 hop protocol: a peer that speaks it can relay for others. */
export const RELAY_HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'

/**
 * Clock skew: signed records carry issuedAt/expiresAt and peers refuse those
 * from too far in the future, so a skew of minutes breaks jobs; seconds are
 * only worth a warning.
 */
export const CLOCK_WARN_MS = 30_000
export const CLOCK_PROBLEM_MS = 5 * 60_000

/**
 * statfs f_type magic numbers of network and cluster filesystems (from
 * linux/magic.h and the vendors' headers). They break the fcntl locks
 * sqlite relies on, or xattrs and overlay upper dirs, or atomic rename.
 */
export const NETWORK_FS_MAGIC: ReadonlyMap<number, string> = new Map([
  [0x6969, 'nfs'],
  [0x0bd00bd0, 'lustre'],
  [0x47504653, 'gpfs'],
  [0x19830326, 'beegfs'],
  [0xff534d42, 'cifs'],
  [0xfe534d42, 'smb2'],
  [0x00c36400, 'ceph'],
  [0xaad7aaea, 'panfs'],
  [0x01021997, '9p'],
  [0x5346414f, 'afs'],
  [0x65735546, 'fuse']
])

/** The same filesystems by their /proc/mounts type, for when statfs reports a generic magic. */
export const NETWORK_FS_TYPES: ReadonlySet<string> = new Set([
  'nfs', 'nfs4', 'lustre', 'gpfs', 'beegfs', 'cifs', 'smb3', 'smbfs', 'ceph', 'panfs', '9p', 'afs',
  'fuse.glusterfs', 'fuse.sshfs', 'fuse.cephfs', 'fuse.beegfs', 'fuse.gcsfuse', 'fuse.s3fs', 'weka', 'wekafs', 'cvfs'
])

/** Where binfmt_misc entries (user-mode emulators for foreign architectures) are listed. */
export const BINFMT_DIR = '/proc/sys/fs/binfmt_misc'
