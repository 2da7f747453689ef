/**
 * The gateway users file (YAML or JSON), read by `kiln gateway --users FILE`:
 *
 * ```yaml
 * users:
 *   - name: ci
 *     passwordHash: "$scrypt$N=32768,r=8,p=1$..."   # kiln gateway hash-password
 *     access:
 *       - repository: "ci/**"
 *         allow: [read, write]
 * ```
 */
import { readFile } from 'node:fs/promises'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { AccessRuleSchema } from './access.ts'
import type { GatewayUser } from './auth.ts'
import { isPasswordHash } from './passwords.ts'

const UsersFileSchema = z.strictObject({
  users: z.array(z.strictObject({
    name: z.string().min(1).regex(/^[^:\s]+$/, 'no colons or spaces in user names'),
    passwordHash: z.string().refine(isPasswordHash, 'not a hash from `kiln gateway hash-password`'),
    access: z.array(AccessRuleSchema).default([])
  })).default([])
})

export class UsersFileInvalidError extends Error {
  static override readonly name = 'UsersFileInvalidError'
  override readonly name = UsersFileInvalidError.name
  readonly code = 'ERR_USERS_FILE_INVALID'
  constructor (message: string) { super(message) }
}

export async function readUsersFile (path: string): Promise<GatewayUser[]> {
  let json: unknown
  try {
    json = parseYaml(await readFile(path, 'utf8'))
  } catch (err) {
    throw new UsersFileInvalidError(`${path}: ${(err as Error).message}`)
  }
  const r = UsersFileSchema.safeParse(json ?? {})
  if (!r.success) {
    throw new UsersFileInvalidError(`${path}: ${r.error.issues.slice(0, 3).map(i => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  }
  const names = new Set<string>()
  for (const u of r.data.users) {
    if (names.has(u.name)) throw new UsersFileInvalidError(`${path}: user ${u.name} is listed twice`)
    names.add(u.name)
  }
  return r.data.users
}
