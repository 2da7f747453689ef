import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashPassword, readUsersFile } from '../../../src/gateway/index.ts'

describe('gateway users file', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'kiln-users-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('reads users with hashes and rules, and refuses plain passwords and duplicates', async () => {
    const hash = await hashPassword('x')
    const ok = join(dir, 'ok.yaml')
    await writeFile(ok, `users:\n  - name: ci\n    passwordHash: "${hash}"\n    access:\n      - repository: "ci/**"\n        allow: [read, write]\n`)
    expect(await readUsersFile(ok)).toEqual([{ name: 'ci', passwordHash: hash, access: [{ repository: 'ci/**', allow: ['read', 'write'] }] }])
    const plain = join(dir, 'plain.yaml')
    await writeFile(plain, 'users:\n  - name: ci\n    passwordHash: hunter2\n')
    await expect(readUsersFile(plain)).rejects.toMatchObject({ name: 'UsersFileInvalidError' })
    const dup = join(dir, 'dup.yaml')
    await writeFile(dup, `users:\n  - {name: a, passwordHash: "${hash}"}\n  - {name: a, passwordHash: "${hash}"}\n`)
    await expect(readUsersFile(dup)).rejects.toThrow(/listed twice/)
    const bad = join(dir, 'bad.yaml')
    await writeFile(bad, 'users:\n  - name: a\n    passwordHash: x\n    access: [{repository: "*", allow: [admin]}]\n')
    await expect(readUsersFile(bad)).rejects.toMatchObject({ name: 'UsersFileInvalidError' })
  })
})
