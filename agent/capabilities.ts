/**
 * What this machine can build, as a capability description (protocols/capability.md §2):
 * native platform and CPU features from /proc/cpuinfo, GPUs from nvidia-smi,
 * CUDA and MPI when present, emulated platforms from binfmt_misc, and limits.
 * Every probe is best effort and bounded; a missing tool means "not offered".
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

export async function detectGpus (): Promise<Array<{ vendor: string, model: string, memoryMiB: number }>> {
  try {
    const { stdout } = await run('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits'], { timeout: PROBE_TIMEOUT_MS })
    return stdout.trim().split('\n').filter(l => l.includes(',')).map(l => {
      const [model, mem] = l.split(',').map(s => s.trim())
      return { vendor: 'nvidia', model: (model ?? 'unknown').slice(0, 128), memoryMiB: Number.parseInt(mem ?? '0', 10) || 0 }
    })
  } catch {
    return []
  }
}

async function cudaVersion (): Promise<string | undefined> {
  try {
    const { stdout } = await run('nvidia-smi', [], { timeout: PROBE_TIMEOUT_MS })
    return /CUDA Version:\s*([0-9.]+)/.exec(stdout)?.[1]
  } catch {
    return undefined
  }
}

async function mpiFlavour (): Promise<string | undefined> {
  try {
    const { stdout } = await run('mpirun', ['--version'], { timeout: PROBE_TIMEOUT_MS })
    if (/Open MPI/i.test(stdout)) return 'openmpi'
    if (/HYDRA|MPICH/i.test(stdout)) return 'mpich'
    if (/Intel/i.test(stdout)) return 'intel-mpi'
    return 'mpi'
  } catch {
    return undefined
  }
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
    cpuFeatures(), detectGpus(), cudaVersion(), mpiFlavour(), emulatedPlatforms(),
    statfs(options.dataDir ?? '.').catch(() => undefined)
  ])
  const native = nativePlatform()
  const platforms = (options.platforms ?? [native]).map(platform => ({ platform, features: platform === native ? features : [] }))
  const capabilities: string[] = []
  if (gpus.length > 0) capabilities.push('gpu')
  if (cuda !== undefined) capabilities.push('cuda')
  if (mpi !== undefined) capabilities.push('mpi')
  if (options.sandbox !== undefined) capabilities.push(`sandbox-${options.sandbox}`)
  return {
    platforms,
    emulated: emulated.filter(p => !platforms.some(x => x.platform === p)),
    capabilities,
    details: {
      ...(gpus.length > 0 ? { gpus } : {}),
      ...(cuda !== undefined ? { cuda } : {}),
      ...(mpi !== undefined ? { mpi } : {}),
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
