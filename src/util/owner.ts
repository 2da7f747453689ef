/**
 * Which process made a scratch file, decidable from its name alone.
 *
 * Terms: a process's *identity* is its pid plus its start time (clock ticks
 * after boot, field 22 of /proc/<pid>/stat): a pid alone names another
 * process once it is reused. An *owner tag* is `@<pid>.<start>`, put in
 * the names of the temp dirs and files a process makes; the owner is
 * *alive* while a process with that pid and that start time exists.
 */
import { readFileSync } from 'node:fs'

const TAG_RE = /@(\d+)\.(\d+)/

/** Start time of a process, or undefined when it does not exist (or /proc cannot say). */
export function processStart (pid: number): string | undefined {
  let stat: string
  try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8') } catch { return undefined }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return fields[19]
}

let self: string | undefined

/** This process's owner tag. */
export function ownerTag (): string {
  self ??= `@${process.pid}.${processStart(process.pid) ?? '0'}`
  return self
}

/** A temp name prefix that tags what is made with it with this process: `mkdtemp(join(dir, scratchPrefix('kiln-x-')))`. */
export function scratchPrefix (prefix: string): string {
  return `${prefix}${ownerTag()}-`
}

/** The owner tag in a name, if it has one. */
export function ownerOf (name: string): { pid: number, start: string } | undefined {
  const m = TAG_RE.exec(name)
  return m === null ? undefined : { pid: Number(m[1]), start: m[2] as string }
}

/** Whether the name carries an owner tag whose process is gone (a name without one is never stale). */
export function ownerGone (name: string): boolean {
  const owner = ownerOf(name)
  if (owner === undefined) return false
  return processStart(owner.pid) !== owner.start
}
