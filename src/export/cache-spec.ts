/**
 * `--cache-to` and `--cache-from` values, in buildx's spelling where it has
 * one:
 *
 *   --cache-to   any --output value, plus `mode=min|max` (default max);
 *                buildx's `type=registry,ref=HOST/REPO:TAG` and
 *                `type=local,dest=DIR` are accepted too
 *   --cache-from oci:DIR[:TAG], oci-archive:FILE[:TAG], docker://HOST/REPO:TAG,
 *                or buildx's type=registry,ref=...  /  type=local,src=DIR[,tag=TAG]
 */
import { OutputSpecInvalidError } from './errors.ts'
import { parseOutputSpec } from './output-spec.ts'
import type { OutputSpec } from './output-spec.ts'

export interface CacheToSpec {
  mode: 'min' | 'max'
  output: OutputSpec
}

/** Default name of the cache artifact in layouts and sites when none is given. */
export const DEFAULT_CACHE_TAG = 'buildcache'

function fields (text: string): Array<[string, string]> | undefined {
  if (!/^[a-z][a-z0-9_.-]*=/.test(text)) return undefined
  if (text.includes('"')) throw new OutputSpecInvalidError(`invalid cache spec ${JSON.stringify(text)}: quoted fields are not supported here`)
  return text.split(',').map(f => { const i = f.indexOf('='); return i < 0 ? [f, ''] : [f.slice(0, i), f.slice(i + 1)] })
}

/** A cache image is an artifact, not a root filesystem: outputs that unpack one (a tree, a tar, a SIF) cannot take it. */
function imageOutput (text: string, output: OutputSpec): OutputSpec {
  if (output.type === 'local' || output.type === 'tar' || output.type === 'sif') {
    throw new OutputSpecInvalidError(`invalid --cache-to ${JSON.stringify(text)}: a cache image has no root filesystem to write as type=${output.type}; write it as an image: oci:DIR, oci-archive:FILE, or type=local,dest=DIR (which --cache-to, as buildx, reads as an OCI layout)`, ['type'])
  }
  return output
}

export function parseCacheToSpec (text: string): CacheToSpec {
  const fs = fields(text)
  if (fs === undefined) return { mode: 'max', output: imageOutput(text, parseOutputSpec(text)) }
  let mode: 'min' | 'max' = 'max'
  const modes = fs.filter(([k]) => k === 'mode')
  if (modes.length > 1) throw new OutputSpecInvalidError(`invalid --cache-to ${JSON.stringify(text)}: mode: given more than once`, ['mode'])
  const m = modes[0]?.[1]
  if (m !== undefined) {
    if (m !== 'min' && m !== 'max') throw new OutputSpecInvalidError(`invalid --cache-to ${JSON.stringify(text)}: mode: expected min or max`, ['mode'])
    mode = m
  }
  // Rebuild the rest in output syntax, translating buildx's cache keys.
  const type = fs.find(([k]) => k === 'type')?.[1]
  const rest = fs.filter(([k]) => k !== 'mode').map(([k, v]) => {
    if (k === 'ref' && type === 'registry') return `name=${v}`
    if (k === 'type' && v === 'local') return 'type=oci-layout'
    return `${k}=${v}`
  })
  const output = imageOutput(text, parseOutputSpec(rest.join(',')))
  // A cache image is an artifact, not a root filesystem: there is no SIF to make of it.
  if (output.type === 'static' && output.sif) throw new OutputSpecInvalidError(`invalid --cache-to ${JSON.stringify(text)}: sif: a cache image has no SIF`, ['sif'])
  if ((output.type === 'oci-layout' || output.type === 'oci-archive' || output.type === 'static' || output.type === 's3') && output.names.length === 0) {
    output.names.push(output.type === 'static' || output.type === 's3' ? `cache:${DEFAULT_CACHE_TAG}` : DEFAULT_CACHE_TAG)
  }
  return { mode, output }
}

/** A reference fetchCacheImage reads. */
export function parseCacheFromSpec (text: string): string {
  const fs = fields(text)
  if (fs === undefined) {
    if (/^(oci|oci-archive):/.test(text) || text.startsWith('docker://')) return text
    throw new OutputSpecInvalidError(`invalid --cache-from ${JSON.stringify(text)}: expected oci:DIR[:TAG], oci-archive:FILE[:TAG], docker://REF or type=...`)
  }
  const map = new Map(fs)
  const unknown = fs.map(([k]) => k).filter(k => !['type', 'ref', 'src', 'tag'].includes(k))
  if (unknown.length > 0) throw new OutputSpecInvalidError(`invalid --cache-from ${JSON.stringify(text)}: ${unknown.join(', ')}: unknown key (known: type, ref, src, tag)`, unknown)
  const type = map.get('type')
  if (type === 'registry' && map.has('ref')) return `docker://${map.get('ref') as string}`
  if ((type === 'local' || type === 'oci-layout') && map.has('src')) return `oci:${map.get('src') as string}:${map.get('tag') ?? DEFAULT_CACHE_TAG}`
  if (type === 'oci-archive' && map.has('src')) return `oci-archive:${map.get('src') as string}:${map.get('tag') ?? DEFAULT_CACHE_TAG}`
  throw new OutputSpecInvalidError(`invalid --cache-from ${JSON.stringify(text)}: expected type=registry,ref=REF or type=local,src=DIR`, ['type'])
}
