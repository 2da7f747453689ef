/**
 * Ed25519 keys as kiln uses them: a public key is named by its libp2p peer
 * id (which embeds the key), a private key lives in a 0600 file holding its
 * libp2p protobuf encoding.
 */
import { chmod, open, readFile, stat } from 'node:fs/promises'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, Ed25519PublicKey, PrivateKey } from '@libp2p/interface'
import { KeyFileError } from './errors.ts'

export type { Ed25519PrivateKey, Ed25519PublicKey }

/** The Ed25519 public key a peer id embeds; throws if the id is malformed or of another key type. */
export function publicKeyFromPeerId (peerId: string): Ed25519PublicKey {
  let id
  try {
    id = peerIdFromString(peerId)
  } catch (err) {
    throw new KeyFileError(`invalid peer id ${JSON.stringify(peerId)}: ${(err as Error).message}`)
  }
  if (id.type !== 'Ed25519') throw new KeyFileError(`peer id ${peerId} is a ${id.type} key; kiln signs with Ed25519 only`)
  return id.publicKey
}

export function peerIdOf (key: PrivateKey): string {
  return peerIdFromPrivateKey(key).toString()
}

export function toBase64url (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
}

export function fromBase64url (text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64url'))
}

export async function generateEd25519 (): Promise<Ed25519PrivateKey> {
  return await generateKeyPair('Ed25519')
}

/**
 * Writes a new key file with mode 0600; refuses to overwrite an existing one
 * (a lost institution root key cannot be recovered, an overwritten one even less).
 */
export async function writeKeyFile (path: string, key: Ed25519PrivateKey): Promise<void> {
  let handle
  try {
    handle = await open(path, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyFileError(`${path} already exists; refusing to overwrite a key`)
    throw err
  }
  try {
    await handle.writeFile(privateKeyToProtobuf(key))
    await handle.sync()
  } finally {
    await handle.close()
  }
  await chmod(path, 0o600)
}

/** Reads an Ed25519 key file; refuses files readable by group or others. */
export async function readKeyFile (path: string): Promise<Ed25519PrivateKey> {
  let info
  try {
    info = await stat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new KeyFileError(`no key file at ${path}`)
    throw err
  }
  if ((info.mode & 0o077) !== 0) throw new KeyFileError(`${path} is accessible by group or others (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 ${path}`)
  let key
  try {
    key = privateKeyFromProtobuf(await readFile(path))
  } catch (err) {
    throw new KeyFileError(`${path} is not a libp2p private key: ${(err as Error).message}`)
  }
  if (key.type !== 'Ed25519') throw new KeyFileError(`${path} holds a ${key.type} key; kiln needs Ed25519`)
  return key
}
