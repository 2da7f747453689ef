/**
 * Bases made from a Debian package mirror (Apptainer `Bootstrap:
 * debootstrap`, `DebootstrapBase` in src/recipe/ir.ts), as an ordinary user.
 *
 * mmdebstrap (Debian package) makes a tarball of the suite's `minbase`
 * variant plus the included packages, in the first of its modes that works
 * for the user (`--mode=auto`: `unshare` when /etc/subuid has an entry for
 * the user, else `fakechroot`, which needs the fakechroot package; as root,
 * `root`). It fetches Release files checked against the host's apt keyrings,
 * so only packages signed by a key the host trusts get in. kiln unpacks the
 * tarball and writes it again with its deterministic layer writer (owners
 * 0:0, mtimes clamped to SOURCE_DATE_EPOCH), makes a one-layer image of it
 * and names it `kiln-debootstrap/<suite>:<key>` in the store, `key` a hash
 * of what was asked for (suite, mirror, packages, architecture). A later
 * build with the same headers starts from that image, as from a pulled
 * registry base; pull policy `always` (`kiln build --pull`) makes it afresh.
 *
 * Package maintainer scripts run on the build host under mmdebstrap's
 * chroot emulation, not in kiln's sandbox: jobs of other peers never get
 * such a base (agent/jobs/recipe-builder.ts).
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import type { Digest } from '../content/index.ts'
import { encodeJson, extractLayer, writeLayerFromDir, OCI_CONFIG, OCI_MANIFEST } from '../oci/index.ts'
import type { Platform } from '../oci/index.ts'
import type { DebootstrapBase, SourceLoc } from '../recipe/ir.ts'
import { resolveBase } from './base.ts'
import type { BaseResolverInit, ResolvedBase } from './base.ts'
import { DEFAULT_PATH, FAILED_STEP_OUTPUT_TAIL } from './constants.ts'
import { BaseImageError } from './errors.ts'
import { HOST_ENV, hostTool } from './sandbox/host-tools.ts'
import { removeTree } from './sandbox/index.ts'
import { runProcess } from './sandbox/process.ts'
import type { OutputStream } from './sandbox/index.ts'

/** Where kiln names the images it bootstraps; the suite is appended. */
export const DEBOOTSTRAP_REPOSITORY = 'kiln-debootstrap'

/** OCI architecture (and variant) to Debian architecture. */
const DEBIAN_ARCH: Readonly<Record<string, string>> = {
  amd64: 'amd64', arm64: 'arm64', 'arm/v7': 'armhf', 'arm/v5': 'armel', '386': 'i386',
  ppc64le: 'ppc64el', s390x: 's390x', riscv64: 'riscv64', mips64le: 'mips64el', loong64: 'loong64'
}

/** Variables of the build host that the bootstrap tool may need: proxies only. */
const PASSED_ENV = ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']

export interface DebootstrapInit extends BaseResolverInit {
  /** A private dir for the tarball and its unpacked tree (the builder's workDir/tmp). */
  tmpDir: string
  sourceDateEpoch: number
  /** The tool's progress and errors, as a RUN step's output. */
  onOutput?: (stream: OutputStream, chunk: Uint8Array) => void
}

function debianArch (platform: Platform, source: SourceLoc | undefined): string {
  const arch = DEBIAN_ARCH[platform.variant === undefined ? platform.architecture : `${platform.architecture}/${platform.variant}`] ?? DEBIAN_ARCH[platform.architecture]
  if (arch === undefined) throw new BaseImageError(`Bootstrap: debootstrap: no Debian architecture for ${platform.architecture}`, source)
  return arch
}

/** The ref tag for what was asked: the same headers and architecture give the same tag. */
export function debootstrapTag (base: DebootstrapBase, arch: string): string {
  const what = JSON.stringify({ suite: base.suite, mirror: base.mirror, include: base.include, arch, variant: 'minbase' })
  return createHash('sha256').update(what).digest('hex').slice(0, 32)
}

/** The base image for a debootstrap stage, made when the store does not hold it yet. */
export async function debootstrapBase (init: DebootstrapInit, base: DebootstrapBase, platform: Platform, source?: SourceLoc): Promise<ResolvedBase> {
  const arch = debianArch(platform, source)
  const repository = `${DEBOOTSTRAP_REPOSITORY}/${base.suite}`
  const tag = debootstrapTag(base, arch)
  const named = init.refs.find(repository, tag)
  if (init.pull !== 'always' && named !== undefined && await init.store.has(named.digest)) return await resolveBase(init, named.digest, platform, source)

  const tool = hostTool('mmdebstrap')
  if (tool === undefined) {
    throw new BaseImageError('Bootstrap: debootstrap needs mmdebstrap on this node: install the Debian packages mmdebstrap and fakechroot, or start from an image (Bootstrap: docker, From: debian:' + base.suite + ')', source)
  }
  await mkdir(init.tmpDir, { recursive: true, mode: 0o700 })
  const dir = await mkdtemp(join(init.tmpDir, 'debootstrap-'))
  try {
    const tarball = join(dir, 'rootfs.tar')
    let tail = ''
    const passed = Object.fromEntries(PASSED_ENV.flatMap(k => (process.env[k] === undefined ? [] : [[k, process.env[k] as string]])))
    const r = await runProcess({
      file: tool,
      args: ['--variant=minbase', '--mode=auto', '--format=tar', `--architectures=${arch}`,
        ...(base.include.length > 0 ? [`--include=${base.include.join(',')}`] : []), base.suite, tarball, base.mirror],
      env: { ...HOST_ENV, ...passed, HOME: dir, TMPDIR: dir, LC_ALL: 'C.UTF-8', SOURCE_DATE_EPOCH: String(init.sourceDateEpoch) },
      cwd: dir,
      parentDeathSignal: 'SIGKILL',
      ...(init.signal !== undefined ? { signal: init.signal } : {}),
      onOutput: (stream, chunk) => {
        tail = (tail + Buffer.from(chunk).toString()).slice(-FAILED_STEP_OUTPUT_TAIL)
        init.onOutput?.(stream, chunk)
      }
    })
    if (r.exitCode !== 0) {
      throw new BaseImageError(`Bootstrap: debootstrap ${base.suite} from ${base.mirror}: mmdebstrap failed with ${r.exitCode === null ? `signal ${String(r.signal)}` : `exit code ${r.exitCode}`}; as an ordinary user it needs the fakechroot package or an /etc/subuid entry:\n${tail.trim()}`, source)
    }
    const rootfs = join(dir, 'rootfs')
    await mkdir(rootfs)
    await extractLayer(createReadStream(tarball), rootfs, { keepSetuid: true, ...(init.signal !== undefined ? { signal: init.signal } : {}) })
    const layer = await writeLayerFromDir(init.store, rootfs, { sourceDateEpoch: init.sourceDateEpoch, ...(init.signal !== undefined ? { signal: init.signal } : {}) })
    const created = new Date(init.sourceDateEpoch * 1000).toISOString().replace('.000Z', 'Z')
    const config = encodeJson({
      created,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
      config: { Env: [`PATH=${DEFAULT_PATH}`] },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, created_by: `Bootstrap: debootstrap ${base.suite} ${base.mirror}${base.include.length > 0 ? ` Include: ${base.include.join(' ')}` : ''}`, comment: 'kiln' }]
    })
    const configInfo = await init.store.ingest(config)
    const manifest = await init.store.ingest(encodeJson({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configInfo.digest, size: configInfo.size },
      layers: [layer.descriptor]
    }))
    init.refs.set(repository, tag, { digest: manifest.digest as Digest, mediaType: OCI_MANIFEST, size: manifest.size })
    return await resolveBase(init, manifest.digest, platform, source)
  } finally {
    await removeTree(dir)
  }
}
