import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { authFilePaths, findCredentials, parseChallenge } from '../../../src/registry/index.ts'

describe('WWW-Authenticate parsing', () => {
  it('reads bearer challenges with quoted and bare values', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' }
    })
    expect(parseChallenge('Bearer realm="r",error="insufficient_scope",scope="repository:a:pull,push"')?.params.scope).toBe('repository:a:pull,push')
    expect(parseChallenge('basic realm=kiln')).toEqual({ scheme: 'basic', params: { realm: 'kiln' } })
    expect(parseChallenge('Negotiate abc')).toBeUndefined()
    expect(parseChallenge(null)).toBeUndefined()
  })
})

describe('auth file lookup', () => {
  let dir: string
  const b64 = (s: string): string => Buffer.from(s).toString('base64')
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-authfile-'))
    await mkdir(join(dir, 'run', 'containers'), { recursive: true })
    await mkdir(join(dir, 'home', '.docker'), { recursive: true })
    await writeFile(join(dir, 'run', 'containers', 'auth.json'), JSON.stringify({
      auths: { 'quay.io': { auth: b64('quser:qpass') }, 'quay.io/team': { auth: b64('team:tpass') } }
    }))
    await writeFile(join(dir, 'home', '.docker', 'config.json'), JSON.stringify({
      auths: { 'https://index.docker.io/v1/': { auth: b64('hub:hpass') }, 'quay.io': { auth: b64('other:x') } }
    }))
  })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('follows containers-auth.json order and prefers repository entries', () => {
    const env = { HOME: join(dir, 'home'), XDG_RUNTIME_DIR: join(dir, 'run') }
    expect(authFilePaths(env)[0]).toBe(join(dir, 'run', 'containers', 'auth.json'))
    expect(findCredentials('quay.io', undefined, env)).toEqual({ username: 'quser', password: 'qpass' })
    expect(findCredentials('quay.io', 'team/app', env)).toEqual({ username: 'team', password: 'tpass' })
    expect(findCredentials('docker.io', 'library/busybox', env)).toEqual({ username: 'hub', password: 'hpass' })
    expect(findCredentials('ghcr.io', undefined, env)).toBeUndefined()
  })

  it('takes $REGISTRY_AUTH_FILE first and names a broken file', async () => {
    const file = join(dir, 'override.json')
    await writeFile(file, JSON.stringify({ auths: { 'quay.io': { username: 'o', password: 'p' } } }))
    const env = { HOME: join(dir, 'home'), XDG_RUNTIME_DIR: join(dir, 'run'), REGISTRY_AUTH_FILE: file }
    expect(findCredentials('quay.io', undefined, env)).toEqual({ username: 'o', password: 'p' })
    await writeFile(file, '{nope')
    expect(() => findCredentials('quay.io', undefined, env)).toThrow(expect.objectContaining({ name: 'AuthFileInvalidError' }))
  })
})
