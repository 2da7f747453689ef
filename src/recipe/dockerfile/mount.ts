/**
 * `RUN --mount=...`: BuildKit's mount options
 * (https://docs.docker.com/reference/dockerfile/#run---mount) read into a
 * RunMount (../ir.ts). A mount is comma-separated `key=value` fields (and
 * bare `ro`, `rw`, `required`), with ARG/ENV substituted as in BuildKit.
 * Types: `bind` (the default), `cache`, `tmpfs`, `secret`; `ssh` is refused:
 * kiln forwards no agent socket into a step.
 */
import { UnsupportedFeatureError } from '../errors.ts'
import type { RunMount } from '../ir.ts'
import { copyFrom } from './copy.ts'
import type { Instruction } from './context.ts'

const KEYS: Readonly<Record<RunMount['type'], readonly string[]>> = {
  bind: ['target', 'source', 'from', 'ro', 'rw'],
  cache: ['target', 'id', 'sharing', 'mode', 'uid', 'gid', 'ro'],
  tmpfs: ['target', 'size'],
  secret: ['id', 'target', 'env', 'required', 'mode', 'uid', 'gid']
}

/** Other spellings BuildKit accepts for a key. */
const ALIASES: Readonly<Record<string, string>> = {
  dst: 'target', destination: 'target', src: 'source', readonly: 'ro', readwrite: 'rw'
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

function isMountType (t: string): t is RunMount['type'] {
  return Object.hasOwn(KEYS, t)
}

/** Reads one `--mount` value; errors name the RUN's file and line. */
export function parseMount (ins: Instruction, text: string): RunMount {
  const fields = new Map<string, string>()
  for (const field of ins.word(text).split(',')) {
    if (field === '') continue
    const eq = field.indexOf('=')
    const rawKey = (eq < 0 ? field : field.slice(0, eq)).toLowerCase()
    const key = ALIASES[rawKey] ?? rawKey
    fields.set(key, eq < 0 ? 'true' : field.slice(eq + 1))
  }
  const type = fields.get('type') ?? 'bind'
  fields.delete('type')
  if (type === 'ssh') {
    throw new UnsupportedFeatureError(ins.loc, 'RUN --mount=type=ssh is not supported',
      'kiln forwards no SSH agent into a step; fetch what needs SSH into the build context, or use a secret (--mount=type=secret)')
  }
  if (!isMountType(type)) throw ins.syntaxError(`unknown mount type '${type}'`, 'use type=bind, cache, tmpfs or secret')
  if (type === 'cache' && (fields.has('from') || fields.has('source'))) {
    throw new UnsupportedFeatureError(ins.loc, 'RUN --mount=type=cache with from= or source= is not supported', 'a cache mount starts empty; fill it in the step')
  }
  for (const key of fields.keys()) {
    if (!KEYS[type].includes(key)) throw ins.syntaxError(`unknown option '${key}' for a ${type} mount`, `a ${type} mount takes ${KEYS[type].join(', ')}`)
  }
  const target = fields.get('target')
  if (target !== undefined && !target.startsWith('/')) throw ins.syntaxError(`mount target '${target}' is not an absolute path`, 'write the path from the root, e.g. target=/root/.cache')
  const needTarget = (): string => {
    if (target === undefined || target === '') throw ins.syntaxError(`a ${type} mount needs target=PATH`)
    return target
  }
  const flag = (key: string): boolean => {
    const v = fields.get(key)
    if (v === undefined || v === 'false') return false
    if (v === 'true') return true
    throw ins.syntaxError(`mount option ${key}=${v}: expected true or false`)
  }
  const int = (key: string, fallback: number, radix: 8 | 10): number => {
    const v = fields.get(key)
    if (v === undefined) return fallback
    const ok = radix === 8 ? /^0?[0-7]{1,4}$/.test(v) : /^\d{1,10}$/.test(v)
    if (!ok) throw ins.syntaxError(`mount option ${key}=${v}: expected ${radix === 8 ? 'an octal mode, e.g. 0755' : 'a number'}`)
    return Number.parseInt(v, radix)
  }

  if (type === 'bind') {
    if (flag('ro') && flag('rw')) throw ins.syntaxError('a bind mount is either ro or rw')
    const source = fields.get('source') ?? '/'
    return { type, target: needTarget(), from: copyFrom(ins, fields.get('from')), source, readWrite: flag('rw') }
  }
  if (type === 'cache') {
    const sharing = fields.get('sharing') ?? 'shared'
    if (sharing !== 'shared' && sharing !== 'private' && sharing !== 'locked') throw ins.syntaxError(`mount option sharing=${sharing}: expected shared, private or locked`)
    const t = needTarget()
    return { type, target: t, id: fields.get('id') ?? t, sharing, readOnly: flag('ro'), mode: int('mode', 0o755, 8), uid: int('uid', 0, 10), gid: int('gid', 0, 10) }
  }
  if (type === 'tmpfs') {
    const t = needTarget()
    const size = fields.get('size')
    if (size === undefined) return { type, target: t }
    const m = /^(\d+)([kmg]?)b?$/i.exec(size)
    if (m === null) throw ins.syntaxError(`mount option size=${size}: expected bytes, e.g. 64m`)
    return { type, target: t, size: Number(m[1]) * (SIZE_UNITS[(m[2] ?? '').toLowerCase()] ?? 1) }
  }
  const id = fields.get('id') ?? (target !== undefined ? target.slice(target.lastIndexOf('/') + 1) : '')
  if (id === '') throw ins.syntaxError('a secret mount needs id=NAME (or a target to take its name from)')
  const env = fields.get('env')
  if (env !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(env)) throw ins.syntaxError(`mount option env=${env}: not a variable name`)
  return {
    type, id,
    ...(target !== undefined ? { target } : {}),
    ...(env !== undefined ? { env } : {}),
    required: flag('required'), mode: int('mode', 0o400, 8), uid: int('uid', 0, 10), gid: int('gid', 0, 10)
  }
}
