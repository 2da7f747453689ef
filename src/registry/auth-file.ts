/**
 * Registry credentials from the files podman, skopeo and docker write
 * (`podman login`, `docker login`), looked up in containers-auth.json(5)
 * order: $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
 * ~/.config/containers/auth.json, ~/.docker/config.json. Credential helpers
 * (credHelpers/credsStore) are not run.
 */
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { AuthFileInvalidError } from './errors.ts'

export interface Credentials {
  username: string
  password: string
}

const AuthFileSchema = z.looseObject({
  auths: z.record(z.string(), z.looseObject({
    auth: z.string().optional(),
    username: z.string().optional(),
    password: z.string().optional()
  })).optional()
})

/** The candidate files, in lookup order. */
export function authFilePaths (env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME ?? homedir()
  return [
    ...(env.REGISTRY_AUTH_FILE !== undefined && env.REGISTRY_AUTH_FILE !== '' ? [env.REGISTRY_AUTH_FILE] : []),
    ...(env.XDG_RUNTIME_DIR !== undefined && env.XDG_RUNTIME_DIR !== '' ? [join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json')] : []),
    join(env.XDG_CONFIG_HOME ?? join(home, '.config'), 'containers', 'auth.json'),
    join(home, '.docker', 'config.json')
  ]
}

/** `https://index.docker.io/v1/` -> `docker.io`; `https://host:5000/` -> `host:5000`. */
function normalizeKey (key: string): string {
  const bare = key.replace(/^https?:\/\//, '').replace(/\/v[12]\/?$/, '').replace(/\/+$/, '')
  return bare === 'index.docker.io' || bare === 'registry-1.docker.io' ? 'docker.io' : bare
}

function decode (entry: { auth?: string, username?: string, password?: string }): Credentials | undefined {
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password }
  if (entry.auth === undefined || entry.auth === '') return undefined
  const text = Buffer.from(entry.auth, 'base64').toString('utf8')
  const colon = text.indexOf(':')
  return colon < 0 ? undefined : { username: text.slice(0, colon), password: text.slice(colon + 1) }
}

/**
 * Credentials for a registry host (`docker.io`, `host:5000`), optionally for a
 * repository in it: a `host/namespace` entry beats a `host` entry, as in
 * containers-auth.json. The first file that has a match wins.
 */
export function findCredentials (registry: string, repository?: string, env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  const host = normalizeKey(registry)
  for (const path of authFilePaths(env)) {
    let text: string
    try { text = readFileSync(path, 'utf8') } catch { continue }
    let json: unknown
    try { json = JSON.parse(text) } catch { throw new AuthFileInvalidError(path, 'not JSON') }
    const parsed = AuthFileSchema.safeParse(json)
    if (!parsed.success) throw new AuthFileInvalidError(path, 'not an auth file ({"auths": {...}})')
    const entries = Object.entries(parsed.data.auths ?? {}).map(([k, v]) => [normalizeKey(k), v] as const)
    const wanted = repository === undefined ? [host] : [...prefixes(`${host}/${repository}`), host]
    for (const key of wanted) {
      const hit = entries.find(([k]) => k === key)
      const creds = hit === undefined ? undefined : decode(hit[1])
      if (creds !== undefined) return creds
    }
  }
  return undefined
}

/** `h/a/b/c` -> [`h/a/b/c`, `h/a/b`, `h/a`]. */
function prefixes (path: string): string[] {
  const parts = path.split('/')
  const out: string[] = []
  for (let i = parts.length; i > 1; i--) out.push(parts.slice(0, i).join('/'))
  return out
}
