/**
 * An institution's root key: `<dataDir>/trust/root.key` (0600, libp2p
 * protobuf) and its public half `root.pub.yaml`, the file other
 * institutions import with `kiln trust add-root`. The public file is 0600
 * too, like everything in the data dir (docs/security.md): it is copied out
 * to be handed over.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { z } from 'zod'
import { PeerIdString } from '../../protocols/envelope.ts'
import { InstitutionName, ROLES } from '../../protocols/federation.ts'
import { ROOT_KEY_FILE, ROOT_PUBLIC_FILE, TRUST_DIR } from './constants.ts'
import { KeyFileError } from './errors.ts'
import { generateEd25519, peerIdOf, readKeyFile, writeKeyFile } from './keys.ts'
import type { Ed25519PrivateKey } from './keys.ts'
import { addRoot } from './policy-file.ts'
import { PRIVATE_FILE_MODE } from '../util/fs.ts'

export const RootPublicFile = z.strictObject({
  kind: z.literal('kiln-trust-root'),
  key: PeerIdString,
  institution: InstitutionName
})
export type RootPublicFile = z.infer<typeof RootPublicFile>

export function rootKeyPath (dataDir: string): string {
  return join(dataDir, TRUST_DIR, ROOT_KEY_FILE)
}

export function rootPublicPath (dataDir: string): string {
  return join(dataDir, TRUST_DIR, ROOT_PUBLIC_FILE)
}

export interface InitRootResult {
  key: string
  institution: string
  keyPath: string
  publicPath: string
}

/**
 * Creates the institution root key and its public file, and trusts it in
 * this node's own policy for every role. Refuses if a root key exists.
 */
export async function initRoot (dataDir: string, institution: string): Promise<InitRootResult> {
  const name = InstitutionName.parse(institution)
  await mkdir(join(dataDir, TRUST_DIR), { recursive: true, mode: 0o700 })
  const key = await generateEd25519()
  const keyPath = rootKeyPath(dataDir)
  await writeKeyFile(keyPath, key)
  const pub: RootPublicFile = { kind: 'kiln-trust-root', key: peerIdOf(key), institution: name }
  const publicPath = rootPublicPath(dataDir)
  await writeFile(publicPath, `# Public half of the kiln trust root of ${name}. Give this file to federated sites.\n${stringify(pub)}`, { mode: PRIVATE_FILE_MODE })
  await addRoot(dataDir, { key: pub.key, institution: name, roles: [...ROLES], note: 'our own root' })
  return { key: pub.key, institution: name, keyPath, publicPath }
}

export async function loadRoot (dataDir: string): Promise<{ key: Ed25519PrivateKey, institution: string }> {
  const key = await readKeyFile(rootKeyPath(dataDir))
  const pub = await readRootPublicFile(rootPublicPath(dataDir))
  if (pub.key !== peerIdOf(key)) throw new KeyFileError(`${rootPublicPath(dataDir)} does not match ${rootKeyPath(dataDir)}`)
  return { key, institution: pub.institution }
}

export async function readRootPublicFile (path: string): Promise<RootPublicFile> {
  let value: unknown
  try {
    value = parse(await readFile(path, 'utf8'), { uniqueKeys: true })
  } catch (err) {
    throw new KeyFileError(`${path}: ${(err as Error).message}`)
  }
  const parsed = RootPublicFile.safeParse(value)
  if (!parsed.success) throw new KeyFileError(`${path} is not a kiln root public file: ${parsed.error.issues.map(i => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  return parsed.data
}
