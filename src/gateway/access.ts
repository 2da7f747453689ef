/**
 * Who may do what to which repository.
 *
 * Terms:
 * - action: what a request needs on a repository, in the registry token
 *   vocabulary that docker, podman and skopeo use: `pull`, `push`,
 *   `delete`, plus kiln's `build` (the build extension).
 * - permission: what a rule grants, as configured: `read` (pull),
 *   `write` (push, delete), `build`.
 * - rule: a repository glob and permissions. `*` matches within one path
 *   segment, `**` across segments: `team/*`, `hpc/**`, `**`.
 * - scope: `repository:NAME:ACTION,ACTION` as in a WWW-Authenticate challenge
 *   or a /token request.
 */
import { z } from 'zod'

export const ACTIONS = ['pull', 'push', 'delete', 'build'] as const
export type Action = typeof ACTIONS[number]

export const PermissionSchema = z.enum(['read', 'write', 'build'])
export type Permission = z.infer<typeof PermissionSchema>

export const AccessRuleSchema = z.object({
  repository: z.string().min(1),
  allow: z.array(PermissionSchema).min(1)
})
export type AccessRule = z.infer<typeof AccessRuleSchema>

const PERMISSION_ACTIONS: Readonly<Record<Permission, readonly Action[]>> = {
  read: ['pull'],
  write: ['push', 'delete'],
  build: ['build']
}

/** One granted access entry, as carried in a token (registry token spec). */
export interface AccessEntry {
  type: 'repository' | 'registry'
  name: string
  actions: string[]
}

export interface Scope {
  type: string
  name: string
  actions: string[]
}

export function globToRegExp (glob: string): RegExp {
  let re = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string
    if (c === '*' && glob[i + 1] === '*') { re += '.*'; i++ } else if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

/** Actions the rules grant on a repository. */
export function allowedActions (rules: readonly AccessRule[], repository: string): Set<Action> {
  const out = new Set<Action>()
  for (const rule of rules) {
    if (!globToRegExp(rule.repository).test(repository)) continue
    for (const p of rule.allow) for (const a of PERMISSION_ACTIONS[p]) out.add(a)
  }
  return out
}

/** Parses `repository:team/app:pull,push`; undefined for a malformed scope. Names may not contain ':' here. */
export function parseScope (text: string): Scope | undefined {
  const first = text.indexOf(':')
  const last = text.lastIndexOf(':')
  if (first <= 0 || last === first) return undefined
  const type = text.slice(0, first).replace(/\(.*\)$/, '')
  const name = text.slice(first + 1, last)
  const actions = text.slice(last + 1).split(',').filter(a => a !== '')
  if (name === '') return undefined
  return { type, name, actions }
}

export function formatScope (repository: string, actions: readonly string[]): string {
  return `repository:${repository}:${actions.join(',')}`
}

/** Whether granted entries allow every one of actions on repository. */
export function entriesAllow (entries: readonly AccessEntry[], repository: string, actions: readonly Action[]): boolean {
  const granted = new Set<string>()
  for (const e of entries) {
    if (e.type === 'repository' && e.name === repository) for (const a of e.actions) granted.add(a)
  }
  return actions.every(a => granted.has(a) || granted.has('*'))
}
