import { mkdtemp, rm, stat, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadOrCreateIdentity } from '../../../src/p2p/identity.ts'

describe('loadOrCreateIdentity', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'kiln-id-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('creates an Ed25519 key 0600 on first use and reloads the same one', async () => {
    const a = await loadOrCreateIdentity(join(dir, 'data'))
    expect(a.created).toBe(true)
    expect(a.privateKey.type).toBe('Ed25519')
    expect((await stat(a.path)).mode & 0o777).toBe(0o600)
    const b = await loadOrCreateIdentity(join(dir, 'data'))
    expect(b.created).toBe(false)
    expect(b.peerId.equals(a.peerId)).toBe(true)
  })

  it('agrees on one key when called concurrently', async () => {
    const ids = await Promise.all([1, 2, 3, 4].map(async () => await loadOrCreateIdentity(dir)))
    expect(new Set(ids.map(i => i.peerId.toString())).size).toBe(1)
  })

  it('refuses a key file readable by others, and garbage', async () => {
    const id = await loadOrCreateIdentity(dir)
    await chmod(id.path, 0o644)
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ name: 'InvalidIdentityError' })
    await writeFile(id.path, 'not a key', { mode: 0o600 })
    await chmod(id.path, 0o600)
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ name: 'InvalidIdentityError' })
  })
})
