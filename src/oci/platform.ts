/**
 * Platforms: `os/arch[/variant]` as written on command lines, normalized the
 * way containerd does (x86_64 -> amd64, aarch64 -> arm64 with the implied
 * variant v8, armhf -> arm/v7), and matching against index entries.
 */
import { endianness } from 'node:os'
import { PlatformInvalidError, PlatformNotFoundError } from './errors.ts'
import type { Descriptor, ImageIndex } from './schemas.ts'

export interface Platform {
  os: string
  architecture: string
  variant?: string
}

const ARCH_ALIASES: Record<string, { architecture: string, variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  amd64: { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  arm64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
  x86: { architecture: '386' },
  ppc64el: { architecture: 'ppc64le' }
}

const TOKEN_RE = /^[a-z0-9_.-]+$/

/** Normalizes aliases and fills defaults: arm64 has variant v8, arm has v7, amd64 v1 is no variant. */
export function normalizePlatform (p: Platform): Platform {
  const os = p.os.toLowerCase()
  const alias = ARCH_ALIASES[p.architecture.toLowerCase()]
  const architecture = alias?.architecture ?? p.architecture.toLowerCase()
  let variant = p.variant?.toLowerCase() ?? alias?.variant
  if (architecture === 'arm64' && (variant === undefined || variant === '8')) variant = 'v8'
  if (architecture === 'arm' && variant === undefined) variant = 'v7'
  if (architecture === 'arm' && variant !== undefined && /^[5-8]$/.test(variant)) variant = `v${variant}`
  if (architecture === 'amd64' && variant === 'v1') variant = undefined
  return variant === undefined ? { os, architecture } : { os, architecture, variant }
}

/** Parses `os/arch[/variant]` (or a bare `arch`, meaning linux/arch) and normalizes it. */
export function parsePlatform (text: string): Platform {
  const parts = text.trim().toLowerCase().split('/')
  if (parts.length === 1 && parts[0] !== undefined && parts[0] !== '' && ARCH_ALIASES[parts[0]] !== undefined) {
    return normalizePlatform({ os: 'linux', architecture: parts[0] })
  }
  if (parts.length < 2 || parts.length > 3 || parts.some(p => !TOKEN_RE.test(p))) {
    throw new PlatformInvalidError(`invalid platform ${JSON.stringify(text)}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`)
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined]
  return normalizePlatform(variant === undefined ? { os, architecture } : { os, architecture, variant })
}

/** `os/arch[/variant]`; the implied arm64/v8 is written as `linux/arm64`. */
export function formatPlatform (p: Platform): string {
  const n = normalizePlatform(p)
  const showVariant = n.variant !== undefined && !(n.architecture === 'arm64' && n.variant === 'v8')
  return `${n.os}/${n.architecture}${showVariant ? `/${n.variant ?? ''}` : ''}`
}

/** The platform of the running Node process. */
export function hostPlatform (): Platform {
  const arch = process.arch
  switch (arch) {
    case 'x64': return { os: 'linux', architecture: 'amd64' }
    case 'arm64': return { os: 'linux', architecture: 'arm64', variant: 'v8' }
    case 'ia32': return { os: 'linux', architecture: '386' }
    case 'arm': {
      const v = (process.config.variables as Record<string, unknown>).arm_version
      return { os: 'linux', architecture: 'arm', variant: `v${typeof v === 'string' || typeof v === 'number' ? String(v) : '7'}` }
    }
    case 'ppc64': return { os: 'linux', architecture: endianness() === 'LE' ? 'ppc64le' : 'ppc64' }
    default: return { os: 'linux', architecture: arch }
  }
}

/** The variants a wanted arm platform can run, best first (a v7 CPU runs v6 and v5 code). */
function acceptedVariants (wanted: Platform): Array<string | undefined> {
  const v = wanted.variant
  if (wanted.architecture === 'arm') {
    const n = Number((v ?? 'v7').slice(1))
    const out: Array<string | undefined> = []
    for (let i = n; i >= 5; i--) out.push(`v${i}`)
    return out
  }
  if (wanted.architecture === 'amd64') {
    const n = v === undefined ? 1 : Number(v.slice(1))
    const out: Array<string | undefined> = []
    for (let i = n; i >= 2; i--) out.push(`v${i}`)
    out.push(undefined)
    return out
  }
  return [v]
}

/**
 * How well a candidate fits the wanted platform: 0 is an exact fit, larger is
 * a worse but runnable fit, undefined means it does not run there.
 */
export function platformRank (wanted: Platform, candidate: Platform): number | undefined {
  const w = normalizePlatform(wanted)
  const c = normalizePlatform(candidate)
  if (w.os !== c.os || w.architecture !== c.architecture) return undefined
  const rank = acceptedVariants(w).indexOf(c.variant)
  return rank < 0 ? undefined : rank
}

export function platformMatches (wanted: Platform, candidate: Platform): boolean {
  return platformRank(wanted, candidate) !== undefined
}

/**
 * The index entry to use for a wanted platform: the best-ranked runnable
 * entry, the first one among equals (index order is the publisher's
 * preference). Entries without a platform are skipped (attestations,
 * artifacts). Throws PlatformNotFoundError listing what the index offers.
 */
export function selectManifest (index: ImageIndex, wanted: Platform): Descriptor {
  let best: { d: Descriptor, rank: number } | undefined
  for (const d of index.manifests) {
    if (d.platform === undefined) continue
    const rank = platformRank(wanted, d.platform)
    if (rank !== undefined && (best === undefined || rank < best.rank)) best = { d, rank }
  }
  if (best !== undefined) return best.d
  const available = index.manifests.flatMap(d => d.platform === undefined ? [] : [formatPlatform(d.platform)])
  throw new PlatformNotFoundError(formatPlatform(wanted), available)
}
