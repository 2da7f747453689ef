import type { Frontend } from './ir.ts'

/**
 * Which front-end reads a recipe: from the file name first (`Dockerfile`,
 * `Containerfile`, `*.Dockerfile`, `Dockerfile.*` -> dockerfile; `*.def`,
 * `Singularity*`, `Apptainer*` -> apptainer), then from the content (a
 * `Bootstrap:` header before any instruction -> apptainer), else dockerfile.
 */
export function detectFrontend (filename: string | undefined, text: string): Frontend {
  const base = (filename ?? '').split(/[\\/]/).pop()?.toLowerCase() ?? ''
  if (/^(docker|container)file(\..*)?$/.test(base) || base.endsWith('.dockerfile') || base.endsWith('.containerfile')) return 'dockerfile'
  if (base.endsWith('.def') || /^(singularity|apptainer)(\..*)?$/.test(base)) return 'apptainer'
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim()
    if (trimmed === '' || trimmed.startsWith('#')) continue
    return /^bootstrap\s*:/i.test(trimmed) ? 'apptainer' : 'dockerfile'
  }
  return 'dockerfile'
}
