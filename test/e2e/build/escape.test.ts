/**
 * Escape attempts against `kiln build`, the attacker's side of issue 14 item
 * 1: the builder resolved the paths of a stage or image on the host, so a
 * symlink made by a RUN step was followed out of the stage root. Each case is
 * a hostile recipe built end to end as the unprivileged user under each
 * sandbox driver (auto, which is bwrap where bwrap works; unshare; proot;
 * chosen with KILN_SANDBOX as a user would). It tries to READ a host secret
 * into the image or to WRITE into a host dir through an instruction that
 * resolves a path (COPY/ADD from the context, a stage or an image, ADD of an
 * archive, WORKDIR, Apptainer %files), or reads /proc at run time; `kiln
 * image unpack` of hostile layers is tried once. The targets, and which
 * outcomes count as contained, are defined in ./escape-harness.ts; each case
 * says which outcomes it accepts.
 *
 * LINKS, the attacker's stage of host-pointing links, is the same in every
 * Dockerfile, so each driver runs it once and takes it from the step cache
 * after that.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { makeBusyboxBase } from '../../helpers/busybox-base.ts'
import { readLayoutBlobs } from '../../helpers/image-layers.ts'
import type { ImageLayer } from '../../helpers/image-layers.ts'
import { writeLayout } from '../../helpers/oci-layout.ts'
import { haveTools } from '../../helpers/tools.ts'
import { makeUnprivileged } from '../../helpers/unprivileged.ts'
import type { Unprivileged } from '../../helpers/unprivileged.ts'
import { buildTar, buildTarGz } from '../../unit/oci/helpers.ts'
import type { TarInput } from '../../unit/oci/helpers.ts'
import { UP, makeArena, makeAttacker, makeTargets } from './escape-harness.ts'
import type { Arena, Attacker, Attempt, SandboxChoice, Targets, Verdict } from './escape-harness.ts'

/**
 * The attacker's links into the host. Each host path they name also exists
 * inside the stage as a harmless decoy (and /secret.txt for the lexical
 * reading of /in/../secret.txt), so a builder that resolves them inside the
 * stage root finds something and builds: the attacks can share one build
 * without a refusal of one hiding the others.
 */
const LINKS = `FROM oci:LAYOUT:base AS links
ARG SECRET_DIR
ARG SECRET
ARG DATA
ARG VICTIM
RUN mkdir -p "$SECRET_DIR/inner" "$DATA" && echo decoy > "$SECRET" && echo decoy > "$DATA/identity.key" && echo decoy > /secret.txt \\
 && ln -s "$SECRET_DIR" /abs && ln -s "$DATA" /data \\
 && ln -s "${UP}$SECRET_DIR" /rel && ln -s "${UP}$DATA" /reldata \\
 && ln -s m2 /m1 && ln -s /m3 /m2 && ln -s "$SECRET_DIR" /m3 \\
 && ln -s l2 /l1 && ln -s l3 /l2 && ln -s "${UP}$SECRET_DIR" /l3 \\
 && ln -s "$SECRET_DIR/inner" /in && ln -s in/.. /up \\
 && ln -s "$SECRET" /k && ln -s "$DATA/identity.key" /idk \\
 && mkdir /dir && echo inside > /dir/file && ln -s "$SECRET_DIR" /dir/link && ln -s "$DATA" /dir/data \\
 && ln -s "$VICTIM" /out && mkdir /p && ln -s "$VICTIM" /p/q
`

/**
 * The attack of the issue as a real attacker writes it: the data dir is read
 * from the overlay's upperdir in /proc/self/mountinfo, or, under proot (no
 * overlay, no pid namespace), from the `-r ROOT` of proot's command line.
 * Where neither is visible (proot steps get no host /proc) the link points
 * nowhere and the COPY must fail as any missing source does.
 */
const MOUNTINFO = `FROM oci:LAYOUT:base AS a
RUN d=$(sed -n 's/.*upperdir=\\([^,]*\\)\\/build\\/tmp\\/.*/\\1/p' /proc/self/mountinfo | head -1); \\
    [ -n "$d" ] || d=$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | sed -n 's/\\/build\\/tmp\\/root-.*//p' | head -1); \\
    echo "attacker found the data dir at [$d]"; ln -s "\${d:-/attacker-found-nothing}" /d
FROM scratch
COPY --from=a /d/identity.key /k
`

/**
 * The reads that find a decoy when resolved inside the stage (or image) root
 * and that today's builder does not refuse either: one build for all, each
 * into its own path under /got, and the context (holding links to the host)
 * copied whole.
 */
const READS = `${LINKS}FROM scratch
COPY --from=links /abs/secret.txt /data/identity.key /got/abs/
COPY --from=links /in/../secret.txt /got/dotdot/
COPY --from=links /up/secret.txt /got/up/
COPY --from=links /k /idk /got/final/
COPY --from=links /abs/ /got/trailing/
COPY --from=links /dir /got/dir
COPY --from=escape/evil-links:1 /abs/secret.txt /data/identity.key /got/image-abs/
COPY . /ctx/
`

/** The Apptainer counterpart of LINKS, for %files from a stage. */
const DEF_LINKS = `Bootstrap: oci
From: LAYOUT:base
Stage: links

%post
    ln -s "{{ SECRET_DIR }}" /abs
    ln -s "{{ DATA }}" /data
`

/** A file `planted` written through a link `a` to `target`. */
const through = (target: string, planted: string): TarInput[] => [{ name: 'a', type: 'symlink', linkname: target }, { name: `a/${planted}`, body: 'planted\n' }]

/** Archives that try to write into the victim or to link the secret, for ADD and for `kiln image unpack`; `planted` names the file that must not land in the victim. */
const HOSTILE_TARS: Array<{ what: string, entries: (victim: string, secret: string, planted: string) => TarInput[] }> = [
  { what: 'an absolute link to the victim, then a file through it', entries: (victim, _s, planted) => through(victim, planted) },
  { what: 'a relative ../.. link to the victim, then a file through it', entries: (victim, _s, planted) => through(`${UP}${victim}`, planted) },
  { what: 'a hardlink naming the host secret by its absolute path', entries: (_v, secret) => [{ name: 'h', type: 'link', linkname: secret }] },
  { what: 'a hardlink naming the host secret through ..', entries: (_v, secret) => [{ name: 'h', type: 'link', linkname: `${UP}${secret}` }] }
]

const DRIVERS: Array<{ sandbox: SandboxChoice, tools: string[] }> = [
  { sandbox: 'auto', tools: [] },
  { sandbox: 'unshare', tools: ['unshare'] },
  { sandbox: 'proot', tools: ['proot'] }
]

/** `name:type:linkname` of the entries under dir/ in the layers. */
function entriesUnder (layers: ImageLayer[], dir: string): string[] {
  return layers.flatMap(l => l.entries)
    .filter(e => e.name.startsWith(`${dir}/`))
    .map(e => `${e.name}:${e.type}:${e.linkname ?? ''}`)
    .sort()
}

describe.skipIf(!haveTools('setpriv', 'umoci', 'busybox'))('kiln build against escape attempts', () => {
  let u: Unprivileged
  let layout: string
  let targets: Targets

  beforeAll(() => {
    u = makeUnprivileged()
    layout = makeBusyboxBase(u)
    targets = makeTargets(u)
  }, 120_000)
  afterAll(() => { u?.cleanup() })

  describe.each(DRIVERS)('sandbox $sandbox', ({ sandbox, tools }) => {
    if (!haveTools(...tools)) { it.skip('needs the tools', () => {}); return }

    let arena: Arena
    let x: Attacker

    /** An OCI layout (tag `evil`) of crafted layers, readable by the user. */
    const craftedLayout = async (name: string, layers: Array<Buffer | TarInput[]>): Promise<string> => {
      const dir = join(u.work, `${name}-${sandbox}`)
      writeLayout(dir, await Promise.all(layers.map(async l => Buffer.isBuffer(l) ? l : await buildTarGz(l))))
      u.give(dir)
      return dir
    }

    beforeAll(async () => {
      arena = makeArena(u, sandbox, layout)
      x = makeAttacker(u, targets, arena)
      // The links stage as an image, for an Apptainer base; this also puts its RUN in the step cache.
      const linksLayout = join(u.work, `links-${sandbox}`)
      const links = x.kiln(['build', '--json', '--target', 'links', '--output', `oci:${linksLayout}:links`, ...x.buildArgs, x.context(LINKS, 'Dockerfile')])
      if (links.status !== 0) throw new Error(`the links stage does not build: ${links.stderr}`)
      const driver = (JSON.parse(links.stdout) as { sandboxDriver: string | null }).sandboxDriver
      console.log(`escape tests: KILN_SANDBOX=${sandbox} ran with the ${String(driver)} driver as uid ${u.uid}`)
      if (sandbox !== 'auto') expect(driver).toBe(sandbox)
      const evilLinks = await craftedLayout('evil-links', [[
        { name: 'abs', type: 'symlink', linkname: targets.secretDir },
        { name: 'rel', type: 'symlink', linkname: `${UP}${targets.secretDir}` },
        { name: 'data', type: 'symlink', linkname: arena.dataDir },
        // Decoys, as in LINKS.
        { name: targets.secret.slice(1), body: 'decoy\n' },
        { name: join(arena.dataDir, 'identity.key').slice(1), body: 'decoy\n' }
      ]])
      const imported = x.kiln(['image', 'import', `oci:${evilLinks}:evil`, '-t', 'escape/evil-links:1'])
      if (imported.status !== 0) throw new Error(`cannot import the crafted image: ${imported.stderr}`)
      arena.placeholders.EVIL_BASE = await craftedLayout('evil-base', [...readLayoutBlobs(layout, 'base').map(l => l.blob), [
        { name: 'w', type: 'symlink', linkname: arena.victim },
        { name: 'w/pwned-base', body: 'planted\n' }
      ]])
      arena.placeholders.LINKS_OCI = linksLayout
    }, 240_000)
    afterEach(() => { x?.reset() })

    /** The context links of the build context cases. */
    const hostLinks = (): Record<string, { link: string }> => ({ hostfile: { link: targets.secret }, hostdir: { link: targets.secretDir } })

    describe('COPY --from a stage or an image and COPY of the context, in one build', () => {
      let reads: ReturnType<Attacker['shared']> | undefined
      const check = async (v: Verdict): Promise<Attempt> => await (reads ??= x.shared({ recipe: READS, files: hostLinks() })).check(v)

      it('does not read through an absolute link to a host dir', async () => {
        await check({ at: 'COPY --from=links /abs/secret.txt', under: 'got/abs', accepts: ['built', 'refused'] })
      }, 120_000)

      it('does not read through .. after a link (/in/../secret.txt, /in pointing into a host dir)', async () => {
        await check({ at: 'COPY --from=links /in/../', under: 'got/dotdot', accepts: ['built', 'refused'] })
      }, 120_000)

      it('does not read through a link whose target holds .. (/up -> in/..)', async () => {
        await check({ at: 'COPY --from=links /up/', under: 'got/up', accepts: ['built', 'refused'] })
      }, 120_000)

      it('does not copy the host file a final link names', async () => {
        await check({ at: 'COPY --from=links /k /idk', under: 'got/final', accepts: ['built', 'refused'] })
      }, 120_000)

      it('does not copy the host dir a final link with a trailing slash names', async () => {
        await check({ at: 'COPY --from=links /abs/ /got', under: 'got/trailing', accepts: ['built', 'refused'] })
      }, 120_000)

      it('copies a dir holding host-pointing links with the links kept as links', async () => {
        const { layers } = await check({ at: 'COPY --from=links /dir', under: 'got/dir', accepts: ['built'] })
        expect(entriesUnder(layers, 'got/dir')).toEqual([
          `got/dir/data:symlink:${arena.dataDir}`,
          'got/dir/file:file:',
          `got/dir/link:symlink:${targets.secretDir}`
        ])
      }, 120_000)

      it('does not read through an absolute link in an image\'s layer', async () => {
        await check({ at: 'COPY --from=escape/evil-links:1 /abs', under: 'got/image-abs', accepts: ['built', 'refused'] })
      }, 120_000)

      it('copies a context holding links to host files and dirs with the links kept as links', async () => {
        const { layers } = await check({ at: 'COPY . /ctx/', under: 'ctx', accepts: ['built'] })
        expect(entriesUnder(layers, 'ctx').filter(e => e.startsWith('ctx/host'))).toEqual([
          `ctx/hostdir:symlink:${targets.secretDir}`,
          `ctx/hostfile:symlink:${targets.secret}`
        ])
      }, 120_000)
    })

    // Each builds alone: today's builder or a fixed one may refuse these, and a refusal would hide the other reads.
    describe('COPY --from through links that climb with .. or hop to a path only the stage has', () => {
      it('does not read through a relative link from a stage', async () => {
        await x.attack({ recipe: `${LINKS}FROM scratch\nCOPY --from=links /rel/secret.txt /reldata/identity.key /got/\n`, at: 'COPY --from', accepts: ['built', 'refused'] })
      }, 120_000)

      it('does not read through a chain of relative links (/l1 -> l2 -> l3 -> ../../..host dir)', async () => {
        await x.attack({ recipe: `${LINKS}FROM scratch\nCOPY --from=links /l1/secret.txt /got/\n`, at: 'COPY --from', accepts: ['built', 'refused'] })
      }, 120_000)

      it('does not read through a chain of links with an absolute hop (/m1 -> m2 -> /m3 -> host dir)', async () => {
        await x.attack({ recipe: `${LINKS}FROM scratch\nCOPY --from=links /m1/secret.txt /got/\n`, at: 'COPY --from', accepts: ['built', 'refused'] })
      }, 120_000)

      it('does not read through a relative link in an image\'s layer', async () => {
        await x.attack({ recipe: 'FROM scratch\nCOPY --from=escape/evil-links:1 /rel/secret.txt /got/\n', at: 'COPY --from', accepts: ['built', 'refused'] })
      }, 120_000)

      it('does not read the data dir an attacker finds in /proc/self/mountinfo', async () => {
        await x.attack({ recipe: MOUNTINFO, at: 'COPY --from', accepts: ['built', 'refused'], log: /attacker found the data dir/ })
      }, 120_000)
    })

    describe('writes into a destination a RUN made a host-pointing link', () => {
      // One build for the four: the victim's listing names each file that got through.
      it('COPY and ADD into the link (/out/) and to a file whose parent is a link (/out/pwned, /p/q/pwned)', async () => {
        const recipe = `${LINKS}FROM links\nCOPY f /out/\nCOPY f /out/pwned-parent\nCOPY f /p/q/pwned-deeper\nADD good.tar /out/\n`
        const files = { f: 'planted\n', 'good.tar': await buildTar([{ name: 'pwned-add', body: 'planted\n' }]) }
        await x.attack({ recipe, files, at: ['COPY f /out/', 'COPY f /out/pwned', 'COPY f /p/', 'ADD good.tar'], accepts: ['built', 'refused'] })
      }, 120_000)

      it('COPY to . under WORKDIR /out', async () => {
        await x.attack({ recipe: `${LINKS}FROM links\nWORKDIR /out\nCOPY f .\n`, files: { f: 'planted\n' }, at: ['WORKDIR /out', 'COPY f'], accepts: ['built', 'refused'] })
      }, 120_000)

      it('RUN under WORKDIR /out/pwned-workdir (the sandbox makes the working dir)', async () => {
        await x.attack({ recipe: `${LINKS}FROM links\nWORKDIR /out/pwned-workdir\nRUN true\n`, at: ['WORKDIR /out', 'RUN true'], accepts: ['built', 'refused'] })
      }, 120_000)
    })

    describe('ADD of a hostile tar from the context', () => {
      for (const { what, entries } of HOSTILE_TARS) {
        it(`holding ${what}`, async () => {
          const tar = await buildTar(entries(arena.victim, targets.secret, 'pwned-tar'))
          await x.attack({ recipe: `${LINKS}FROM links\nADD evil.tar /x/\n`, files: { 'evil.tar': tar }, at: 'ADD evil.tar', accepts: ['built', 'refused'] })
        }, 120_000)
      }
    })

    it('FROM an image whose layer writes through a host-pointing link', async () => {
      await x.attack({ recipe: 'FROM oci:EVIL_BASE:evil\nRUN true\n', at: 'FROM oci:', accepts: ['built', 'refused'] })
    }, 120_000)

    describe('Apptainer %files', () => {
      it('from a stage, does not read through a host-pointing link', async () => {
        const recipe = `${DEF_LINKS}\nBootstrap: scratch\nStage: final\n\n%files from links\n    /abs/secret.txt /got/secret.txt\n    /data/identity.key /got/identity.key\n`
        await x.attack({ recipe, file: 'Singularity.def', at: ['/abs/secret.txt', '/data/identity.key'], accepts: ['built', 'refused'] })
      }, 120_000)

      it('does not write through a host-pointing link the base image holds', async () => {
        const recipe = 'Bootstrap: oci\nFrom: LINKS_OCI:links\n\n%files\n    f /out/pwned-files\n    f /p/q/pwned-files\n\n%post\n    true\n'
        await x.attack({ recipe, file: 'Singularity.def', files: { f: 'planted\n' }, at: ['f /out/', 'f /p/q/'], accepts: ['built', 'refused'] })
      }, 120_000)
    })

    describe('a build context holding host-pointing links', () => {
      it('COPY of a link to a host file', async () => {
        await x.attack({ recipe: `${LINKS}FROM links\nCOPY hostfile /x\n`, files: hostLinks(), at: 'COPY hostfile', accepts: ['built', 'refused'] })
      }, 120_000)

      it('COPY of a file through a link to a host dir', async () => {
        await x.attack({ recipe: `${LINKS}FROM links\nCOPY hostdir/secret.txt /x\n`, files: hostLinks(), at: 'COPY hostdir', accepts: ['built', 'refused'] })
      }, 120_000)
    })

    // proot: expected to FAIL until the proot driver is reworked (a separate part of issue 14): proot has no pid
    // namespace and binds the host's /proc, so a step reads kiln's own environment in /proc/<pid>/environ.
    it('RUN reading /proc/*/environ and reading or writing through /proc/<pid>/root gets nothing out', async () => {
      const recipe = `${LINKS}FROM links
ARG DATA
ARG SECRET
ARG VICTIM
RUN cat /proc/*/environ > /environ 2>/dev/null; \\
    for p in /proc/[0-9]*; do \\
      cat "$p/root$DATA/identity.key" "$p/root$SECRET" "$p/cwd/../secrets/secret.txt"; echo planted > "$p/root$VICTIM/pwned-proc"; \\
    done > /viaproc 2>/dev/null; \\
    cat /environ /viaproc; true
`
      await x.attack({ recipe, at: 'RUN cat /proc', accepts: ['built'] })
    }, 120_000)
  })

  describe('kiln image unpack of hostile layers', () => {
    let victim: string
    beforeAll(() => {
      victim = join(u.home, 'victim-unpack')
      mkdirSync(victim)
      u.give(victim)
    })

    for (const [i, { what, entries }] of HOSTILE_TARS.entries()) {
      // Accepts both outcomes: unpacked (the link resolved inside the target), or refused with a classified
      // exit status (2 or more) and an error; either way nothing lands outside the target.
      it(`with ${what} writes nothing outside the target and links no host file`, async () => {
        const dir = join(u.work, `unpack-layout-${i}`)
        writeLayout(dir, [await buildTarGz(entries(victim, targets.secret, 'pwned-unpack'))])
        u.give(dir)
        const target = join(u.work, `unpack-target-${i}`)
        const r = u.kiln(['image', 'unpack', `oci:${dir}:evil`, target])
        expect(readdirSync(victim), 'the victim dir').toEqual([])
        expect(lstatSync(targets.secret).nlink, 'hard links of secret.txt').toBe(1)
        if (r.status !== 0) {
          expect(r.status ?? -1, r.stderr).toBeGreaterThanOrEqual(2)
          expect(r.stderr).toMatch(/^kiln: error: /m)
        }
        const holding = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap(e => {
          const p = join(d, e.name)
          return e.isDirectory() ? holding(p) : e.isFile() && readFileSync(p).includes(targets.secretBytes) ? [p] : []
        })
        expect(existsSync(target) ? holding(target) : [], 'files in the target holding the secret').toEqual([])
      }, 120_000)
    }
  })
})
