/**
 * What this machine can build, as a capability description (protocols/capability.md §2):
 * native platform and CPU features from /proc/cpuinfo, GPUs from nvidia-smi
 * or rocm-smi, CUDA and MPI (mpirun or mpiexec on PATH, with its version)
 * when present, emulated platforms from binfmt_misc (qemu-*), limits, and the
 * capabilities configured in kiln.yaml (`agent.capabilities`: `NAME` or
 * `NAME=VALUE`). Every probe is best effort and bounded; a missing tool
 * means "not offered".
 */
import { execFile } from 'node:child_process'
import { readFile, readdir, statfs } from 'node:fs/promises'
import { availableParallelism, arch as osArch, totalmem } from 'node:os'
import { promisify } from 'node:util'
import type { CapabilityDescription } from '../src/p2p/index.ts'

const run = promisify(execFile)
const PROBE_TIMEOUT_MS = 3000

/** CPU flags worth advertising: the ones that decide whether an optimized build runs. */
const INTERESTING_FEATURES = new Set([
  'sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl', 'avx512_vnni',
  'avx512_bf16', 'amx_tile', 'amx_bf16', 'sha_ni', 'aes', 'asimd', 'sve', 'sve2', 'sha2', 'atomics', 'vsx', 'altivec'
])

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', arm: 'arm' }
const BINFMT_ARCH: Record<string, string> = {
  'qemu-aarch64': 'linux/arm64', 'qemu-x86_64': 'linux/amd64', 'qemu-ppc64le': 'linux/ppc64le',
  'qemu-riscv64': 'linux/riscv64', 'qemu-s390x': 'linux/s390x', 'qemu-arm': 'linux/arm/v7'
}

export interface DetectOptions {
  /** kiln.yaml's agent.capabilities, `NAME` or `NAME=VALUE`: advertised beside the detected ones. */
  configured?: readonly string[]
  /** Platforms to advertise instead of the detected one (`--platform`). */
  platforms?: string[]
  institution?: string
  /** Sandbox driver the builder chose, if known. */
  sandbox?: string
  /** Directory whose filesystem bounds the disk limit; default the current directory. */
  dataDir?: string
  queue?: () => { queued: number, running: number }
}

export function nativePlatform (): string {
  return `linux/${GOARCH[osArch()] ?? osArch()}`
}

export async function cpuFeatures (): Promise<string[]> {
  const text = await readFile('/proc/cpuinfo', 'utf8').catch(() => '')
  const line = text.split('\n').find(l => /^(flags|Features)\s*:/.test(l))
  if (line === undefined) return []
  const flags = line.slice(line.indexOf(':') + 1).trim().split(/\s+/)
  return [...new Set(flags.filter(f => INTERESTING_FEATURES.has(f)))].sort()
}

type Gpu = { vendor: string, model: string, memoryMiB: number }

/** Runs a probe; undefined when the tool is missing, fails or is slow. */
async function probe (file: string, args: string[]): Promise<string | undefined> {
  try {
    return (await run(file, args, { timeout: PROBE_TIMEOUT_MS })).stdout
  } catch {
    return undefined
  }
}

/** `40960 MiB`, `40960`, `16 GiB` as nvidia-smi and rocm-smi print them, in MiB. */
function mebibytes (text: string | undefined): number {
  const m = /([0-9.]+)\s*([KMGT]i?B)?/i.exec(text ?? '')
  if (m === null) return 0
  const scale: Record<string, number> = { kib: 1 / 1024, mib: 1, gib: 1024, tib: 1024 * 1024, b: 1 / (1024 * 1024) }
  const n = Number(m[1]) * (scale[(m[2] ?? 'MiB').toLowerCase()] ?? 1)
  return Number.isFinite(n) ? Math.round(n) : 0
}

/** nvidia-smi's `--query-gpu=name,driver_version,memory.total --format=csv,noheader`: one `name, driver, 40960 MiB` line per GPU. */
export function parseNvidiaSmi (stdout: string): Gpu[] {
  return stdout.split('\n').map(l => l.split(',').map(s => s.trim())).filter(f => f.length >= 3 && f[0] !== '').map(([model, , mem]) =>
    ({ vendor: 'nvidia', model: (model as string).slice(0, 128), memoryMiB: mebibytes(mem) }))
}

/** rocm-smi's `--showproductname --showmeminfo vram --json`: `{"card0": {"Card series": ..., "VRAM Total Memory (B)": ...}}`. */
export function parseRocmSmi (stdout: string): Gpu[] {
  let cards: unknown
  try { cards = JSON.parse(stdout) } catch { return [] }
  if (cards === null || typeof cards !== 'object') return []
  return Object.entries(cards as Record<string, unknown>).filter(([card, v]) => card.startsWith('card') && v !== null && typeof v === 'object').map(([, v]) => {
    const fields = v as Record<string, unknown>
    const model = String(fields['Card series'] ?? fields['Card model'] ?? 'unknown').trim() || 'unknown'
    const bytes = Number(fields['VRAM Total Memory (B)'] ?? 0)
    return { vendor: 'amd', model: model.slice(0, 128), memoryMiB: Number.isFinite(bytes) ? Math.round(bytes / (1024 * 1024)) : 0 }
  })
}

/** GPUs through nvidia-smi, else rocm-smi; none when neither runs. */
export async function detectGpus (): Promise<Gpu[]> {
  const nvidia = await probe('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'])
  if (nvidia !== undefined) {
    const gpus = parseNvidiaSmi(nvidia)
    if (gpus.length > 0) return gpus
  }
  const rocm = await probe('rocm-smi', ['--showproductname', '--showmeminfo', 'vram', '--json'])
  return rocm === undefined ? [] : parseRocmSmi(rocm)
}

async function cudaVersion (): Promise<string | undefined> {
  return /CUDA Version:\s*([0-9.]+)/.exec(await probe('nvidia-smi', []) ?? '')?.[1]
}

/** `mpirun --version` (or mpiexec's) as `flavour-version`: `openmpi-4.1.5`, `mpich-4.0`, `intel-mpi-2021.9`; flavour alone when no version shows. */
export function parseMpiVersion (stdout: string): string {
  const flavour = /Open MPI/i.test(stdout) ? 'openmpi' : /Intel/i.test(stdout) ? 'intel-mpi' : /HYDRA|MPICH/i.test(stdout) ? 'mpich' : 'mpi'
  const version = /(?:Version:?|\)|Library)\s*([0-9]+(?:\.[0-9]+)*)/i.exec(stdout)?.[1] ?? /\b([0-9]+\.[0-9]+(?:\.[0-9]+)?)\b/.exec(stdout)?.[1]
  return version === undefined ? flavour : `${flavour}-${version}`.slice(0, 64)
}

/** MPI from mpirun, else mpiexec, on PATH. */
async function mpiVersion (): Promise<string | undefined> {
  for (const tool of ['mpirun', 'mpiexec']) {
    const out = await probe(tool, ['--version'])
    if (out !== undefined) return parseMpiVersion(out)
  }
  return undefined
}

export async function emulatedPlatforms (): Promise<string[]> {
  const names = await readdir('/proc/sys/fs/binfmt_misc').catch(() => [] as string[])
  const out: string[] = []
  for (const name of names) {
    const platform = BINFMT_ARCH[name]
    if (platform === undefined) continue
    const status = await readFile(`/proc/sys/fs/binfmt_misc/${name}`, 'utf8').catch(() => '')
    if (status.startsWith('enabled')) out.push(platform)
  }
  return out.sort()
}

/** Probes the machine; takes a second or two when nvidia-smi or mpirun are slow. */
export async function detectCapabilities (options: DetectOptions = {}): Promise<CapabilityDescription> {
  const [features, gpus, cuda, mpi, emulated, fs] = await Promise.all([
    cpuFeatures(), detectGpus(), cudaVersion(), mpiVersion(), emulatedPlatforms(),
    statfs(options.dataDir ?? '.').catch(() => undefined)
  ])
  const native = nativePlatform()
  const platforms = (options.platforms ?? [native]).map(platform => ({ platform, features: platform === native ? features : [] }))
  const configured = new Map((options.configured ?? []).map(c => splitCapability(c)))
  const capabilities = new Set<string>()
  if (gpus.length > 0) capabilities.add('gpu')
  if (cuda !== undefined) capabilities.add('cuda')
  if (mpi !== undefined) capabilities.add('mpi')
  if (options.sandbox !== undefined) capabilities.add(`sandbox-${options.sandbox}`)
  for (const name of configured.keys()) capabilities.add(name)
  // A detected version wins over a configured one: it is what the build will find.
  const cudaDetail = cuda ?? configured.get('cuda')
  const mpiDetail = mpi ?? configured.get('mpi')
  return {
    platforms,
    emulated: emulated.filter(p => !platforms.some(x => x.platform === p)),
    capabilities: [...capabilities],
    details: {
      ...(gpus.length > 0 ? { gpus } : {}),
      ...(cudaDetail !== undefined ? { cuda: cudaDetail.slice(0, 32) } : {}),
      ...(mpiDetail !== undefined ? { mpi: mpiDetail.slice(0, 64) } : {}),
      ...(options.sandbox !== undefined ? { sandbox: options.sandbox } : {})
    },
    limits: {
      cpus: availableParallelism(),
      memoryBytes: totalmem(),
      diskBytes: fs !== undefined ? Number(fs.bavail) * Number(fs.bsize) : 0
    },
    queue: options.queue?.() ?? { queued: 0, running: 0 },
    ...(options.institution !== undefined ? { institution: options.institution } : {})
  }
}

/** `NAME=VALUE` as [NAME, VALUE], `NAME` as [NAME, undefined]. */
function splitCapability (text: string): [string, string | undefined] {
  const eq = text.indexOf('=')
  return eq === -1 ? [text, undefined] : [text.slice(0, eq), text.slice(eq + 1)]
}

/**
 * What a job's requirements are matched against (agent/jobs/match.ts), all
 * taken from the description the agent advertises, so that what it offers
 * and what it is found by are the same: its capabilities, the CPU features
 * of its native platforms, `cuda=VERSION` and `mpi=VERSION` from the
 * details (and `mpi=FLAVOUR`, `FLAVOUR=VERSION` for `mpi=openmpi` or
 * `openmpi>=4`), and configured `NAME=VALUE` entries (kiln.yaml agent.capabilities)
 * whose value the record has no field for.
 */
export function requirementTerms (description: CapabilityDescription, configured: readonly string[] = []): string[] {
  const { details } = description
  return [...new Set([
    ...description.capabilities,
    ...description.platforms.flatMap(p => p.features),
    ...(details.cuda !== undefined ? [`cuda=${details.cuda}`] : []),
    ...(details.mpi !== undefined ? mpiTerms(details.mpi) : []),
    ...configured.filter(c => c.includes('='))
  ])]
}

/** `openmpi-4.1.5` as `mpi=openmpi-4.1.5`, `mpi=openmpi` and `openmpi=4.1.5`. */
function mpiTerms (mpi: string): string[] {
  const m = /^([a-z][a-z0-9_.-]*?)-([0-9][0-9.]*)$/.exec(mpi)
  return m === null ? [`mpi=${mpi}`] : [`mpi=${mpi}`, `mpi=${m[1] as string}`, `${m[1] as string}=${m[2] as string}`]
}
