/**
 * Hostile RUN steps and contexts on the Debian 12 base, as the unprivileged
 * user, with the default sandbox (bwrap where it works): what
 * ./escape.test.ts does not try. A step on a glibc base runs under the
 * ownership ledger, a host dir bound read-write into the step
 * (src/builder/sandbox/fakeroot.ts), so these attack what kiln reads back
 * after a step: the ledger's files replaced by a fifo (which made kiln's
 * open block forever, deaf to SIGTERM) or by a link to the node key, a
 * path deeper than PATH_MAX (which failed the commit with a bare
 * ENAMETOOLONG and left an undeletable dir in the data dir, and a snapshot
 * under the step's key that a rebuild took as its result), devices,
 * fifos and sockets, hard links to the host files bound into the step, and
 * the file descriptors a step inherits. The context cases climb out with
 * `..`, re-include a host-pointing link with a `.dockerignore` negation,
 * bind a context link to a host dir, and COPY through an absolute link an
 * ADDed tar planted. The targets and what counts as contained are those of
 * ./escape-harness.ts.
 *
 * Run time: about 3 minutes at a load average of 6 on 2 cores (the base is
 * imported once; each case builds one or two small steps on it).
 */
import { linkSync, copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { debianBaseFor } from '../../helpers/debian-base.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { buildTar } from '../../unit/oci/helpers.ts'
import { makeArena, makeAttacker, makeTargets } from './escape-harness.ts'
import type { Arena, Attacker, Targets } from './escape-harness.ts'

const base = debianBaseFor(['setpriv', 'bwrap', 'fakeroot', 'mmdebstrap', 'unshare'])

const BASE = 'e2e/debian:12'

/** Shell that kills the step's faked (the ledger's daemon) and stops loading libfakeroot, which would wait on it forever. */
const KILL_FAKED = 'unset LD_PRELOAD; for p in /proc/[0-9]*; do [ "$(/usr/bin/readlink $p/exe)" = /dev/.kiln/host/ld.so ] && kill -9 ${p#/proc/}; done'

describe.skipIf(base === undefined)('kiln build against hostile steps on a glibc base (uid 65534, default sandbox)', () => {
  let u: Unprivileged
  let targets: Targets
  let arena: Arena
  let x: Attacker

  beforeAll(() => {
    u = makeUnprivileged()
    targets = makeTargets(u)
    arena = makeArena(u, 'auto', '')
    x = makeAttacker(u, targets, arena)
    const ctx = join(u.work, 'base-ctx')
    mkdirSync(ctx)
    try { linkSync(base as string, join(ctx, 'rootfs.tar')) } catch { copyFileSync(base as string, join(ctx, 'rootfs.tar')) }
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nADD rootfs.tar /\n')
    u.give(ctx)
    const r = x.kiln(['build', '-q', '-t', BASE, ctx])
    if (r.status !== 0) throw new Error(`the Debian base does not build: ${r.stderr}`)
  }, 300_000)
  // The data dir holds the unpacked Debian base and its snapshots: removing them takes a while on a loaded machine.
  afterAll(() => { u?.cleanup() }, 300_000)
  afterEach(() => { x?.reset() })

  /** What a build left in the data dir's scratch: nothing once it has ended. */
  const scratch = (): string[] => readdirSync(join(arena.dataDir, 'build', 'tmp'))

  describe('the ownership ledger, which the step can write', () => {
    it('a fifo in place of the ledger\'s out and rootdev fails the step at its line instead of hanging kiln', async () => {
      const recipe = `FROM ${BASE}\nRUN ${KILL_FAKED}; /bin/rm -f /dev/.kiln/ledger/out /dev/.kiln/ledger/rootdev; /usr/bin/mkfifo /dev/.kiln/ledger/out /dev/.kiln/ledger/rootdev; /bin/rm /bin/sh\n`
      const { run } = await x.attack({ recipe, at: 'RUN unset LD_PRELOAD', accepts: ['refused'] })
      expect(run.status).toBe(5)
      expect(run.stderr).toMatch(/replaced the ownership ledger's out/)
      expect(scratch()).toEqual([])
    }, 180_000)

    it('a link from the ledger\'s out to the node key is not followed', async () => {
      const recipe = `FROM ${BASE}\nARG DATA\nRUN ${KILL_FAKED}; /bin/rm -f /dev/.kiln/ledger/out; /bin/ln -s "$DATA/identity.key" /dev/.kiln/ledger/out; /bin/ln -s "$DATA/identity.key" /dev/.kiln/ledger/rootdev 2>/dev/null; /bin/rm /bin/sh\n`
      await x.attack({ recipe, at: 'RUN unset LD_PRELOAD', accepts: ['refused'] })
      expect(scratch()).toEqual([])
    }, 180_000)

    it('hard links to the host files bound into the step fail, and none is in the image', async () => {
      const recipe = `FROM ${BASE}\nRUN for f in /dev/.kiln/ledger/in /dev/.kiln/host/ld.so /dev/.kiln/host/lib/libc.so.6; do ln "$f" "/hl-$(basename $f)" && echo "linked $f"; done; ls /hl-* 2>/dev/null; true\n`
      const { layers } = await x.attack({ recipe, at: 'RUN for f', accepts: ['built'], log: /linked/ })
      expect(layers.slice(1).flatMap(l => l.entries.map(e => e.name)).filter(n => n.startsWith('hl-'))).toEqual([])
    }, 180_000)
  })

  it('a path deeper than PATH_MAX fails the step at its line and leaves no scratch in the data dir', async () => {
    // Dir names of 200 bytes, as deep as the step's shell goes (about 4096 bytes): past PATH_MAX below kiln's work dir.
    const recipe = `FROM ${BASE}\nRUN n=$(printf 'd%.0s' $(seq 1 200)); i=0; while [ $i -lt 30 ]; do mkdir $n && cd $n || break; i=$((i+1)); done 2>/dev/null; echo deep > leaf\n`
    const snapshots = (): string[] => readdirSync(join(arena.dataDir, 'build', 'snapshots'))
    const before = snapshots()
    const { run } = await x.attack({ recipe, at: 'RUN n=', accepts: ['refused'] })
    expect(run.status).toBe(5)
    expect(run.stderr).toMatch(/path too deep/)
    expect(scratch()).toEqual([])
    // Nor a snapshot under the step's key, which a later build of the same step would take as its result.
    expect(snapshots()).toEqual(before)
  }, 180_000)

  it('devices, fifos and sockets a step makes are not carried into its layer', async () => {
    const recipe = `FROM ${BASE}
RUN mknod /sda b 8 0; mknod /mem c 1 1; mkfifo /fifo; perl -MSocket -e 'socket(S, PF_UNIX, SOCK_STREAM, 0) or die; bind(S, pack_sockaddr_un("/sock")) or die' && echo made > /made
`
    const { layers } = await x.attack({ recipe, at: 'RUN mknod', accepts: ['built'] })
    const entries = layers.slice(1).flatMap(l => l.entries)
    expect(entries.filter(e => ['sda', 'mem', 'fifo', 'sock'].includes(e.name)).map(e => `${e.name}:${e.type}`)).toEqual([])
    expect(entries.filter(e => !['file', 'directory', 'symlink'].includes(e.type)).map(e => `${e.name}:${e.type}`)).toEqual([])
    expect(entries.find(e => e.name === 'made')?.body.toString()).toBe('made\n')
  }, 180_000)

  it('a step inherits no file descriptor of kiln or the host: only /dev/null, pipes, sockets and its own', async () => {
    const recipe = `FROM ${BASE}\nRUN for f in /proc/self/fd/* /proc/1/fd/*; do readlink "$f"; done > /fds.txt 2>&1; true\n`
    const { layers } = await x.attack({ recipe, at: 'RUN for f', accepts: ['built'] })
    const fds = layers.slice(1).flatMap(l => l.entries).find(e => e.name === 'fds.txt')?.body.toString() ?? ''
    const lines = fds.split('\n').filter(l => l !== '')
    expect(lines.length).toBeGreaterThan(0)
    // The loop's own output (/fds.txt) and /dev/null; everything else is a pipe, a socket or an anonymous inode.
    expect(lines.filter(l => !/^(\/fds\.txt|\/dev\/null|pipe:\[\d+\]|socket:\[\d+\]|anon_inode:\[?[\w-]+\]?)$/.test(l))).toEqual([])
  }, 180_000)

  describe('contexts that climb out', () => {
    it('COPY sources with .. and absolute host paths stay in the context', async () => {
      const recipe = `FROM ${BASE}\nCOPY ../../secrets/secret.txt ../../../home/secrets/secret.txt /got/\n`
      await x.attack({ recipe, at: 'COPY ../', accepts: ['built', 'refused'] })
    }, 180_000)

    it('a .dockerignore negation re-including a path through a host-pointing link copies the link, not the host dir', async () => {
      const files = { '.dockerignore': '*\n!hostdir\n!hostdir/secret.txt\n!hostdir/**\n!Dockerfile\n', hostdir: { link: targets.secretDir } }
      const { layers } = await x.attack({ recipe: `FROM ${BASE}\nCOPY . /ctx/\n`, files, at: 'COPY .', accepts: ['built'] })
      expect(layers.slice(1).flatMap(l => l.entries).filter(e => e.name.startsWith('ctx/host')).map(e => `${e.name}:${e.type}:${e.linkname ?? ''}`))
        .toEqual([`ctx/hostdir:symlink:${targets.secretDir}`])
    }, 180_000)

    it('RUN --mount=type=bind of a context link to a host dir is refused at its line', async () => {
      const recipe = `FROM ${BASE}\nRUN --mount=type=bind,source=hostdir,target=/m cat /m/secret.txt > /got; true\n`
      await x.attack({ recipe, files: { hostdir: { link: targets.secretDir } }, at: 'RUN --mount', accepts: ['refused'] })
    }, 180_000)

    it('COPY into the absolute link an ADDed tar planted writes inside the root', async () => {
      const tar = await buildTar([{ name: 'lnk', type: 'symlink', linkname: arena.victim }])
      const recipe = `FROM ${BASE}\nADD evil.tar /\nCOPY f /lnk/pwned-copy\nCOPY f /lnk/\n`
      await x.attack({ recipe, files: { 'evil.tar': tar, f: 'planted\n' }, at: ['ADD evil.tar', 'COPY f /lnk'], accepts: ['built', 'refused'] })
    }, 180_000)
  })
})
