/**
 * The node's persistent identity: an Ed25519 private key, protobuf-encoded
 * (the libp2p key format) in `<dataDir>/identity.key`, mode 0600, created on
 * first use. Its public half is the libp2p peer id.
 */
import { randomBytes } from 'node:crypto'
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey, PeerId } from '@libp2p/interface'
import { IDENTITY_FILE } from './constants.ts'
import { InvalidIdentityError } from './errors.ts'

export { IDENTITY_FILE }
/** A protobuf Ed25519 private key is 68 bytes; anything much larger is not one. */
const MAX_IDENTITY_FILE_SIZE = 4096

export interface Identity {
  privateKey: PrivateKey
  peerId: PeerId
  /** The file the key lives in. */
  path: string
  /** True when this call created the key. */
  created: boolean
}

/**
 * Loads the node key from `<dataDir>/identity.key`, creating it (and the data
 * dir, mode 0700) if absent. Concurrent first calls agree on one key: the file
 * is linked into place atomically and the loser reads the winner's key. Throws
 * InvalidIdentityError if the file is not an Ed25519 key or is readable by
 * group or others.
 */
export async function loadOrCreateIdentity (dataDir: string): Promise<Identity> {
  const path = join(dataDir, IDENTITY_FILE)
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  try {
    return { ...(await readIdentity(path)), path, created: false }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  // Write the key to a private temp file, then link it into place: link()
  // fails with EEXIST if another process won, and no reader ever sees a
  // half-written key.
  const privateKey = await generateKeyPair('Ed25519')
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await open(tmp, 'wx', 0o600)
  try {
    await handle.writeFile(privateKeyToProtobuf(privateKey))
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await link(tmp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return { ...(await readIdentity(path)), path, created: false }
  } finally {
    await unlink(tmp)
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), path, created: true }
}

async function readIdentity (path: string): Promise<{ privateKey: PrivateKey, peerId: PeerId }> {
  const st = await stat(path)
  if ((st.mode & 0o077) !== 0) {
    throw new InvalidIdentityError(`${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${path}`)
  }
  if (st.size > MAX_IDENTITY_FILE_SIZE) throw new InvalidIdentityError(`${path} is ${st.size} bytes: not a kiln identity key`)
  const bytes = await readFile(path)
  if (bytes.length === 0) throw new InvalidIdentityError(`${path} is empty`)
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new InvalidIdentityError(`${path} is not a libp2p private key`, { cause: err })
  }
  if (privateKey.type !== 'Ed25519') throw new InvalidIdentityError(`${path} holds a ${privateKey.type} key; kiln uses Ed25519`)
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey) }
}
