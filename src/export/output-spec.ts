/**
 * `--output` values, in docker buildx syntax or as a containers-transports
 * short form:
 *
 *   type=oci-layout,dest=DIR[,name=TAG][,compression=gzip|zstd]   oci-layout:DIR[:TAG]   oci:DIR[:TAG]
 *   type=oci-archive,dest=FILE[,name=TAG][,compression=gzip|zstd] oci-archive:FILE[:TAG]
 *   type=docker-archive,dest=FILE[,name=REPO:TAG][,platform=P]  docker-archive:FILE[:REPO:TAG]
 *   type=registry,name=HOST/REPO:TAG[,insecure=true][,compression=gzip|zstd]  docker://HOST/REPO:TAG
 *   type=image,name=...,push=true                 (buildx spelling of type=registry)
 *   type=static,dest=DIR,name=REPO[:TAG][,sif=true]   (sif: each tag T also as the SIF artifact T.sif)
 *   type=s3,bucket=B[,prefix=P][,region=R][,endpoint_url=URL][,use_path_style=true],name=REPO[:TAG]
 *   type=exec,cmd=PROGRAM[,arg=A]...[,timeout=SECONDS][,opt.KEY=VALUE]...
 *   type=kiln                                     (provide the blobs on the peer network)
 *   type=sif,dest=FILE[,platform=P]               sif:FILE   (Apptainer's image format, docs/sif.md)
 *   type=local,dest=DIR[,platform=P]              DIR (a plain path)   (the root filesystem as files)
 *   type=tar,dest=FILE[,platform=P]               (a tar of the root filesystem)
 *
 * buildx aliases: `type=oci` is oci-archive (oci-layout with `tar=false`),
 * `type=docker` is docker-archive.
 *
 * Fields are comma-separated `key=value`. Double quotes protect commas and
 * may wrap a whole field (`"name=a:1,a:2"`, as buildx's CSV reading) or a
 * value (`name="a:1,a:2"`); `""` inside quotes is one quote. `name` may be
 * repeated or hold a comma-separated list; `arg` may be repeated and keeps
 * its order.
 *
 * `compression` (as buildx's) is that of the layers the build writes
 * (`layerCompressionOf`): gzip by default; zstd is smaller and faster to
 * write, and needs clients that read it (docs/exporters.md).
 */
import { z } from 'zod'
import { parseImageRef } from '../oci/index.ts'
import type { ImageRef } from '../oci/index.ts'
import { MAX_EXEC_ARGS, MAX_EXPORT_NAMES, MAX_OUTPUT_SPEC_LENGTH } from './constants.ts'
import { OutputSpecInvalidError } from './errors.ts'

/** Compression of the layers a build writes, asked for by an output. */
export type OutputCompression = 'gzip' | 'zstd'
export interface OciLayoutSpec { type: 'oci-layout', dest: string, names: string[], compression?: OutputCompression }
export interface OciArchiveSpec { type: 'oci-archive', dest: string, names: string[], compression?: OutputCompression }
export interface DockerArchiveSpec { type: 'docker-archive', dest: string, names: string[], platform?: string }
export interface RegistrySpec { type: 'registry', names: string[], insecure: boolean, compression?: OutputCompression }
export interface StaticSiteSpec {
  type: 'static'
  dest: string
  names: string[]
  /** Also write each tag T's SIF ORAS artifact at tag `T.sif` (src/sif's oras-artifact.ts). */
  sif: boolean
}
export interface S3Spec {
  type: 's3'
  bucket: string
  /** Key prefix without leading or trailing slash; '' for the bucket root. */
  prefix: string
  region?: string
  endpointUrl?: string
  usePathStyle: boolean
  names: string[]
  accessKeyId?: string
  secretAccessKey?: string
  sessionToken?: string
}
export interface ExecSpec {
  type: 'exec'
  cmd: string
  args: string[]
  timeoutSeconds?: number
  /** `opt.KEY=VALUE` fields, passed to the program in its request. */
  options: Record<string, string>
}
export interface KilnSpec { type: 'kiln' }
export interface SifSpec { type: 'sif', dest: string, platform?: string }
/** The root filesystem unpacked into a directory (an index without platform: one subdirectory per platform). */
export interface LocalSpec { type: 'local', dest: string, platform?: string }
/** A tar of the root filesystem (laid out as type=local's directory). */
export interface TarSpec { type: 'tar', dest: string, platform?: string }

/** A parsed and validated `--output`. */
export type OutputSpec = OciLayoutSpec | OciArchiveSpec | DockerArchiveSpec | RegistrySpec | StaticSiteSpec | S3Spec | ExecSpec | KilnSpec | SifSpec | LocalSpec | TarSpec
export type OutputType = OutputSpec['type']

const KEY_RE = /^[a-z][a-z0-9_.-]*$/
const REPEATABLE = new Set(['name', 'arg'])

/** Splits `a=b,"c=d,e",f="g,h"` into fields, honouring quotes. */
function splitFields (text: string): string[] {
  const fields: string[] = []
  let cur = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string
    if (c === '"') {
      if (quoted && text[i + 1] === '"') { cur += '"'; i++ } else quoted = !quoted
    } else if (c === ',' && !quoted) {
      fields.push(cur)
      cur = ''
    } else cur += c
  }
  if (quoted) throw new OutputSpecInvalidError(`invalid --output ${JSON.stringify(text)}: unterminated double quote`)
  fields.push(cur)
  return fields
}

type RawFields = Map<string, string[]>

function tokenize (text: string): RawFields {
  const out: RawFields = new Map()
  const bad: string[] = []
  for (const field of splitFields(text)) {
    if (field.trim() === '') continue
    const eq = field.indexOf('=')
    const key = (eq < 0 ? field : field.slice(0, eq)).trim()
    if (eq < 0 || !KEY_RE.test(key)) { bad.push(key === '' ? field : key); continue }
    const value = field.slice(eq + 1)
    const list = out.get(key) ?? []
    list.push(value)
    out.set(key, list)
  }
  if (bad.length > 0) throw new OutputSpecInvalidError(`invalid --output ${JSON.stringify(text)}: ${bad.map(b => JSON.stringify(b)).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not key=value`, bad)
  return out
}

const NonEmpty = z.string().min(1, 'must not be empty')
const Bool = z.stringbool({ truthy: ['true', '1', 'yes', 'on'], falsy: ['false', '0', 'no', 'off'] })
const Names = z.array(NonEmpty).max(MAX_EXPORT_NAMES)
const OptNames = Names.default([])

const layoutName = (n: string): boolean => /^[A-Za-z0-9][A-Za-z0-9._:@/+-]*$/.test(n)

const Compression = z.enum(['gzip', 'zstd'], 'expected gzip or zstd').optional()

const SCHEMAS = {
  'oci-layout': z.strictObject({ dest: NonEmpty, name: OptNames.refine(ns => ns.every(layoutName), 'not a valid image name'), compression: Compression }),
  'oci-archive': z.strictObject({ dest: NonEmpty, name: OptNames.refine(ns => ns.every(layoutName), 'not a valid image name'), compression: Compression }),
  'docker-archive': z.strictObject({ dest: NonEmpty, name: OptNames, platform: NonEmpty.optional() }),
  registry: z.strictObject({ name: Names.min(1, 'a registry output needs name=HOST/REPO:TAG'), insecure: Bool.default(false), push: Bool.optional(), compression: Compression }),
  static: z.strictObject({ dest: NonEmpty, name: OptNames, sif: Bool.default(false) }),
  s3: z.strictObject({
    bucket: NonEmpty,
    prefix: z.string().default(''),
    region: NonEmpty.optional(),
    endpoint_url: z.url().optional(),
    use_path_style: Bool.default(false),
    name: OptNames,
    access_key_id: NonEmpty.optional(),
    secret_access_key: NonEmpty.optional(),
    session_token: NonEmpty.optional()
  }),
  exec: z.strictObject({
    cmd: NonEmpty,
    arg: z.array(z.string()).max(MAX_EXEC_ARGS).default([]),
    timeout: z.coerce.number().positive().max(24 * 3600).optional()
  }),
  kiln: z.strictObject({}),
  sif: z.strictObject({ dest: NonEmpty, platform: NonEmpty.optional() }),
  local: z.strictObject({ dest: NonEmpty, platform: NonEmpty.optional() }),
  tar: z.strictObject({ dest: NonEmpty, platform: NonEmpty.optional() })
} as const

type SchemaType = keyof typeof SCHEMAS

/** buildx type names and kiln's own, to the schema that checks them. */
const TYPE_ALIASES: Record<string, SchemaType> = {
  'oci-layout': 'oci-layout',
  'oci-archive': 'oci-archive',
  oci: 'oci-archive',
  'docker-archive': 'docker-archive',
  docker: 'docker-archive',
  registry: 'registry',
  image: 'registry',
  static: 'static',
  's3': 's3',
  exec: 'exec',
  kiln: 'kiln',
  sif: 'sif',
  local: 'local',
  tar: 'tar'
}

function fail (text: string, problems: Array<{ key: string, why: string }>): never {
  const keys = [...new Set(problems.map(p => p.key))]
  throw new OutputSpecInvalidError(`invalid --output ${JSON.stringify(text)}: ${problems.map(p => `${p.key}: ${p.why}`).join('; ')}`, keys)
}

function splitNames (values: string[] | undefined): string[] | undefined {
  return values?.flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '')
}

function checkNames (text: string, type: SchemaType, names: string[]): void {
  const problems: Array<{ key: string, why: string }> = []
  for (const n of names) {
    try {
      if (type === 'registry') parseImageRef(`docker://${n}`)
      else if (type === 'docker-archive' || type === 'static' || type === 's3') {
        const r = parseImageRef(n)
        if (r.transport !== 'local' || r.digest !== undefined) throw new Error(`${JSON.stringify(n)} is not REPO[:TAG]`)
      }
    } catch (err) {
      problems.push({ key: 'name', why: (err as Error).message })
    }
  }
  if (problems.length > 0) fail(text, problems)
}

function fromFields (text: string, fields: RawFields): OutputSpec {
  const typeValues = fields.get('type')
  if (typeValues === undefined) fail(text, [{ key: 'type', why: `missing; expected one of ${Object.keys(TYPE_ALIASES).join(', ')}` }])
  if (typeValues.length > 1) fail(text, [{ key: 'type', why: 'given more than once' }])
  const typeName = (typeValues[0] as string).trim()
  let type = TYPE_ALIASES[typeName]
  if (type === undefined) fail(text, [{ key: 'type', why: `unknown type ${JSON.stringify(typeName)}; expected one of ${Object.keys(TYPE_ALIASES).join(', ')}` }])
  fields.delete('type')

  const problems: Array<{ key: string, why: string }> = []
  const options: Record<string, string> = {}
  const input: Record<string, unknown> = {}
  for (const [key, values] of fields) {
    if (type === 'exec' && key.startsWith('opt.') && key.length > 4) {
      if (values.length > 1) problems.push({ key, why: 'given more than once' })
      options[key.slice(4)] = values[0] as string
      continue
    }
    if (!REPEATABLE.has(key) && values.length > 1) { problems.push({ key, why: 'given more than once' }); continue }
    input[key] = REPEATABLE.has(key) ? (key === 'name' ? splitNames(values) : values) : values[0]
  }
  // buildx spellings that select another kiln type.
  if (typeName === 'oci' && 'tar' in input) {
    if (input.tar === 'false') type = 'oci-layout'
    else if (input.tar !== 'true') problems.push({ key: 'tar', why: 'expected true or false' })
    delete input.tar
  }
  if (typeName === 'image' && input.push !== 'true') problems.push({ key: 'push', why: 'type=image writes to a registry only with push=true (the local store already keeps every build)' })
  if (typeName === 'registry' && input.push === 'false') problems.push({ key: 'push', why: 'type=registry always pushes' })
  if (problems.length > 0) fail(text, problems)

  const r = SCHEMAS[type].safeParse(input)
  if (!r.success) {
    for (const issue of r.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys) problems.push({ key: k, why: `unknown key for type=${type} (known: ${Object.keys(SCHEMAS[type].shape).filter(s => s !== 'push').join(', ') || 'none'})` })
      } else {
        const key = String(issue.path[0] ?? 'type')
        problems.push({ key, why: issue.code === 'invalid_type' && issue.input === undefined ? 'required' : issue.message })
      }
    }
    const order = [...fields.keys()]
    const pos = (k: string): number => { const i = order.indexOf(k); return i < 0 ? order.length : i }
    fail(text, problems.sort((a, b) => pos(a.key) - pos(b.key)))
  }
  const v = r.data as Record<string, unknown>
  const names = (v.name as string[] | undefined) ?? []
  checkNames(text, type, names)
  const compression = v.compression === undefined ? {} : { compression: v.compression as OutputCompression }
  switch (type) {
    case 'oci-layout':
    case 'oci-archive':
      return { type, dest: v.dest as string, names, ...compression }
    case 'static':
      return { type, dest: v.dest as string, names, sif: v.sif as boolean }
    case 'docker-archive':
      return { type, dest: v.dest as string, names, ...(v.platform === undefined ? {} : { platform: v.platform as string }) }
    case 'registry':
      return { type, names, insecure: v.insecure as boolean, ...compression }
    case 's3':
      return {
        type,
        bucket: v.bucket as string,
        prefix: (v.prefix as string).replace(/^\/+|\/+$/g, ''),
        usePathStyle: v.use_path_style as boolean,
        names,
        ...(v.region === undefined ? {} : { region: v.region as string }),
        ...(v.endpoint_url === undefined ? {} : { endpointUrl: v.endpoint_url as string }),
        ...(v.access_key_id === undefined ? {} : { accessKeyId: v.access_key_id as string }),
        ...(v.secret_access_key === undefined ? {} : { secretAccessKey: v.secret_access_key as string }),
        ...(v.session_token === undefined ? {} : { sessionToken: v.session_token as string })
      }
    case 'exec':
      return { type, cmd: v.cmd as string, args: v.arg as string[], options, ...(v.timeout === undefined ? {} : { timeoutSeconds: v.timeout as number }) }
    case 'kiln':
      return { type }
    case 'local':
    case 'tar':
      if (v.dest === '-') fail(text, [{ key: 'dest', why: 'a root filesystem on stdout (-) is not supported, stdout carries the build\'s own lines; give a file' }])
      return { type, dest: v.dest as string, ...(v.platform === undefined ? {} : { platform: v.platform as string }) }
    case 'sif':
      return { type, dest: v.dest as string, ...(v.platform === undefined ? {} : { platform: v.platform as string }) }
  }
}

function fromShortForm (text: string): OutputSpec {
  if (text.startsWith('sif:')) {
    if (text.length === 4) throw new OutputSpecInvalidError(`invalid --output ${JSON.stringify(text)}: sif:FILE needs a file`)
    return { type: 'sif', dest: text.slice(4) }
  }
  // A plain path is a directory for the root filesystem, as buildx reads `-o DIR`.
  if (text === '-') throw new OutputSpecInvalidError('invalid --output "-": a tar on stdout is not supported, stdout carries the build\'s own lines; write type=tar,dest=FILE', ['dest'])
  if (!text.includes(':')) return { type: 'local', dest: text }
  let ref: ImageRef
  try {
    ref = parseImageRef(text.startsWith('oci-layout:') ? `oci:${text.slice('oci-layout:'.length)}` : text)
  } catch (err) {
    throw new OutputSpecInvalidError(`invalid --output ${JSON.stringify(text)}: ${(err as Error).message}`)
  }
  switch (ref.transport) {
    case 'oci': return { type: 'oci-layout', dest: ref.path, names: ref.tag === undefined ? [] : [ref.tag] }
    case 'oci-archive': return { type: 'oci-archive', dest: ref.path, names: ref.tag === undefined ? [] : [ref.tag] }
    case 'docker-archive': {
      if (ref.index !== undefined) throw new OutputSpecInvalidError(`invalid --output ${JSON.stringify(text)}: @INDEX selects an image to read; to write, name it docker-archive:FILE:REPO:TAG`)
      const name = ref.name === undefined ? undefined : text.slice(`docker-archive:${ref.path}:`.length)
      return { type: 'docker-archive', dest: ref.path, names: name === undefined ? [] : [name] }
    }
    case 'docker': return { type: 'registry', names: [text.slice('docker://'.length)], insecure: false }
    default:
      throw new OutputSpecInvalidError(`invalid --output ${JSON.stringify(text)}: expected type=...,key=value, a directory (type=local) or one of oci-layout:DIR, oci:DIR, oci-archive:FILE, docker-archive:FILE, docker://REF, sif:FILE`)
  }
}

/**
 * Parses an `--output` value. Throws OutputSpecInvalidError naming every bad
 * key (also in its `keys`).
 */
export function parseOutputSpec (text: string): OutputSpec {
  if (text.length > MAX_OUTPUT_SPEC_LENGTH) throw new OutputSpecInvalidError(`invalid --output: longer than ${MAX_OUTPUT_SPEC_LENGTH} characters`)
  if (text.trim() === '') throw new OutputSpecInvalidError('invalid --output: empty')
  if (/^[a-z][a-z0-9_.-]*=/.test(text) || text.startsWith('"')) return fromFields(text, tokenize(text))
  return fromShortForm(text)
}

/** Writes a spec back as `type=...,key=value` (for logs and job records); secrets are left out. */
export function formatOutputSpec (spec: OutputSpec): string {
  const q = (v: string): string => /[,"]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v
  const parts: string[] = [`type=${spec.type}`]
  const add = (k: string, v: string | undefined): void => { if (v !== undefined) parts.push(`${k}=${q(v)}`) }
  switch (spec.type) {
    case 'oci-layout': case 'oci-archive':
      add('dest', spec.dest); spec.names.forEach(n => { add('name', n) }); add('compression', spec.compression); break
    case 'static':
      add('dest', spec.dest); spec.names.forEach(n => { add('name', n) }); if (spec.sif) add('sif', 'true'); break
    case 'docker-archive':
      add('dest', spec.dest); spec.names.forEach(n => { add('name', n) }); add('platform', spec.platform); break
    case 'registry':
      spec.names.forEach(n => { add('name', n) }); if (spec.insecure) add('insecure', 'true'); add('compression', spec.compression); break
    case 's3':
      add('bucket', spec.bucket); if (spec.prefix !== '') add('prefix', spec.prefix); add('region', spec.region); add('endpoint_url', spec.endpointUrl)
      if (spec.usePathStyle) add('use_path_style', 'true'); spec.names.forEach(n => { add('name', n) }); break
    case 'exec':
      add('cmd', spec.cmd); spec.args.forEach(a => { add('arg', a) }); add('timeout', spec.timeoutSeconds?.toString())
      for (const [k, v] of Object.entries(spec.options)) add(`opt.${k}`, v)
      break
    case 'kiln': break
    case 'sif': case 'local': case 'tar':
      add('dest', spec.dest); add('platform', spec.platform); break
  }
  return parts.join(',')
}

/**
 * The compression of the layers a build with these outputs writes: what
 * they ask for (gzip when none does). Outputs asking for different ones are
 * refused: one build writes one set of layers.
 */
export function layerCompressionOf (outputs: readonly OutputSpec[]): OutputCompression {
  const asked = new Set(outputs.flatMap(o => 'compression' in o && o.compression !== undefined ? [o.compression] : []))
  if (asked.size > 1) throw new OutputSpecInvalidError('invalid --output: the outputs ask for different compressions (gzip and zstd); a build writes its layers once: give every output the same compression=', ['compression'])
  return asked.has('zstd') ? 'zstd' : 'gzip'
}
