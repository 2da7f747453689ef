/**
 * Membership certificates (protocols/federation.md §2): issued by an
 * institution root key, kept by their subject in `<dataDir>/trust/certs/`
 * and presented with the messages that need them.
 */
import { mkdir, readdir, readFile, writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { canonicalJson, parseCanonical } from '../../protocols/envelope.ts'
import type { Envelope } from '../../protocols/envelope.ts'
import { CertPayload } from '../../protocols/federation.ts'
import type { Role } from '../../protocols/federation.ts'
import { CERTS_DIR, DEFAULT_CERT_TTL_MS, TRUST_DIR } from './constants.ts'
import { signEnvelope, verifyEnvelope } from './envelope.ts'
import { EnvelopeInvalidError } from './errors.ts'
import type { Ed25519PrivateKey } from './keys.ts'

export type Certificate = Envelope<CertPayload>

export interface IssueOptions {
  subject: string
  roles: readonly Role[]
  institution: string
  /** Default 90 days; at most 730 days. */
  ttlMs?: number
  now?: number
}

export async function issueCertificate (rootKey: Ed25519PrivateKey, options: IssueOptions): Promise<Certificate> {
  const payload = CertPayload.safeParse({ subject: options.subject, roles: [...new Set(options.roles)], institution: options.institution })
  if (!payload.success) throw new EnvelopeInvalidError(`certificate: ${payload.error.issues.map(i => i.message).join('; ')}`)
  return await signEnvelope(rootKey, 'cert', payload.data, { ttlMs: options.ttlMs ?? DEFAULT_CERT_TTL_MS, now: options.now })
}

/** Verifies signature, type, version, time and payload of a certificate; says nothing about whether its root is trusted. */
export async function verifyCertificate (input: unknown, now?: number): Promise<Certificate> {
  return await verifyEnvelope(input, { type: 'cert', payload: CertPayload, now })
}

function certsDir (dataDir: string): string {
  return join(dataDir, TRUST_DIR, CERTS_DIR)
}

/**
 * Stores a certificate for this node to present. It must verify now; the
 * file is named by signer and subject, so a renewed certificate replaces
 * the old one from the same root.
 */
export async function saveCertificate (dataDir: string, input: unknown): Promise<{ cert: Certificate, path: string }> {
  const cert = await verifyCertificate(input)
  const dir = certsDir(dataDir)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const path = join(dir, `${cert.signer}-${cert.payload.subject}.json`)
  const tmp = `${path}.tmp`
  await writeFile(tmp, canonicalJson(cert) + '\n', { mode: 0o600 })
  await rename(tmp, path)
  return { cert, path }
}

/**
 * The certificates stored for `subject` that still verify; files that do not
 * parse or have expired are skipped (and reported through onSkip).
 */
export async function loadCertificates (dataDir: string, subject: string, onSkip?: (file: string, reason: string) => void): Promise<Certificate[]> {
  let files: string[]
  try {
    files = await readdir(certsDir(dataDir))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const out: Certificate[] = []
  for (const f of files.filter(f => f.endsWith('.json')).sort()) {
    try {
      const bytes = await readFile(join(certsDir(dataDir), f))
      const text = new TextDecoder().decode(bytes).trimEnd()
      const cert = await verifyCertificate(parseCanonical(new TextEncoder().encode(text)))
      if (cert.payload.subject === subject) out.push(cert)
    } catch (err) {
      onSkip?.(f, (err as Error).message)
    }
  }
  return out
}
