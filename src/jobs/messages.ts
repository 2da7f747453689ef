/**
 * Sealing and opening job-protocol frames (protocols/job.md §4): one place
 * that signs a payload into a frame and that verifies an inbound frame's
 * envelope against the schema of its type. Used by the requester and by
 * the agent.
 */
import type { PrivateKey } from '@libp2p/interface'
import type { Envelope } from '../../protocols/envelope.ts'
import { ENVELOPE_TYPES } from '../../protocols/envelope.ts'
import { JOB_MESSAGES, decodeFrame, encodeFrame, isJobMessageType } from '../../protocols/job.ts'
import type { JobMessageType, ResultPayload } from '../../protocols/job.ts'
import { EnvelopeInvalidError, signEnvelope, verifyEnvelope } from '../trust/index.ts'
import type { ReplayCache } from '../trust/index.ts'
import type { z } from 'zod'

export type JobPayloads = { [K in JobMessageType]: z.infer<typeof JOB_MESSAGES[K]> }

export type OpenedFrame = {
  [K in JobMessageType]: { type: K, envelope: Envelope<JobPayloads[K]>, certs: unknown[] }
}[JobMessageType]

export interface SealOptions {
  certs?: readonly unknown[]
  ttlMs?: number
}

export async function seal<K extends JobMessageType> (key: PrivateKey, type: K, payload: JobPayloads[K], options: SealOptions = {}): Promise<{ envelope: Envelope<JobPayloads[K]>, frame: Uint8Array }> {
  const ttlMs = options.ttlMs ?? Math.min(ENVELOPE_TYPES[type].maxTtlMs, 3600_000)
  const envelope = await signEnvelope(key, type, payload, { ttlMs })
  return { envelope, frame: encodeFrame({ envelope, certs: [...(options.certs ?? [])] }) }
}

/** Re-frames an envelope signed earlier (a job re-published, a job inside an award). */
export function frameOf (envelope: Envelope, certs: readonly unknown[] = []): Uint8Array {
  return encodeFrame({ envelope, certs: [...certs] })
}

/**
 * Decodes a frame and verifies its envelope with the schema of the type it
 * claims. Throws EnvelopeInvalidError for a malformed frame or a type that
 * is not a job message, and every verification error of verifyEnvelope.
 */
export async function openFrame (bytes: Uint8Array, options: { replayCache?: ReplayCache, now?: number } = {}): Promise<OpenedFrame> {
  let frame
  try {
    frame = decodeFrame(bytes)
  } catch (err) {
    throw new EnvelopeInvalidError(`not a job frame: ${(err as Error).message}`)
  }
  const type = frame.envelope.type
  if (!isJobMessageType(type)) throw new EnvelopeInvalidError(`${JSON.stringify(type)} is not a job protocol message`)
  const envelope = await verifyEnvelope(frame.envelope, { type, payload: JOB_MESSAGES[type] as z.ZodType<JobPayloads[typeof type]>, ...options })
  return { type, envelope, certs: frame.certs } as OpenedFrame
}

/**
 * A result that gives the platform back rather than reporting on a build
 * (protocols/job.md §3): `cancelled` when the requester did not cancel (the
 * agent was stopped), or `failed` without `provenance.startedAt` (the agent
 * restarted and lost the run). Another builder may well succeed.
 */
export function isHandBack (r: ResultPayload): boolean {
  return r.status === 'cancelled' || (r.status === 'failed' && r.provenance?.startedAt === undefined)
}
