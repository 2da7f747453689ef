import { describe, expect, it } from 'vitest'
import { canonicalJson } from '../../../protocols/envelope.ts'
import { JobPayload, MAX_BASE_PINS, MAX_FRAME_BYTES, ResultPayload, decodeFrame, encodeFrame, jobTopic, parseRequirement } from '../../../protocols/job.ts'

const digest = `sha256:${'a'.repeat(64)}`

describe('job protocol', () => {
  it('names one gossipsub topic per platform and refuses malformed platforms', () => {
    expect(jobTopic('linux/arm64/v8')).toBe('kiln/jobs/v1/linux/arm64/v8')
    expect(jobTopic('linux/amd64')).toBe('kiln/jobs/v1/linux/amd64')
    expect(() => jobTopic('linux')).toThrow()
    expect(() => jobTopic('linux/amd64/../x')).toThrow()
  })

  it('parses requirements', () => {
    expect(parseRequirement('gpu')).toEqual({ name: 'gpu' })
    expect(parseRequirement('cuda>=12.2')).toEqual({ name: 'cuda', op: '>=', value: '12.2' })
    expect(() => parseRequirement('cuda >= 12')).toThrow(RangeError)
    expect(() => parseRequirement('Rm -rf')).toThrow(RangeError)
  })

  it('bounds a job', () => {
    const job = {
      jobId: 'abcdefgh12', recipe: { kind: 'dockerfile', file: 'Dockerfile', text: 'FROM scratch', digest },
      context: { digest, size: 10 }, platforms: ['linux/amd64']
    }
    expect(JobPayload.parse(job)).toMatchObject({ requirements: [], buildArgs: {}, network: false })
    expect(JobPayload.safeParse({ ...job, platforms: [] }).success).toBe(false)
    expect(JobPayload.safeParse({ ...job, platforms: Array(17).fill('linux/amd64') }).success).toBe(false)
    expect(JobPayload.safeParse({ ...job, recipe: { ...job.recipe, text: 'x'.repeat(256 * 1024 + 1) } }).success).toBe(false)
    expect(JobPayload.safeParse({ ...job, extra: 1 }).success).toBe(false)
  })

  it('carries pinned bases optionally, each a platform manifest by digest, within bounds', () => {
    const job = {
      jobId: 'abcdefgh12', recipe: { kind: 'dockerfile', file: 'Dockerfile', text: 'FROM busybox', digest },
      context: { digest, size: 10 }, platforms: ['linux/amd64']
    }
    const pin = { ref: 'busybox', platform: 'linux/amd64', digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 500 }
    expect(JobPayload.parse(job).bases).toBeUndefined()
    expect(JobPayload.parse({ ...job, bases: [pin] }).bases).toEqual([pin])
    expect(JobPayload.safeParse({ ...job, bases: [{ ...pin, digest: 'sha256:short' }] }).success).toBe(false)
    expect(JobPayload.safeParse({ ...job, bases: [{ ...pin, platform: 'linux' }] }).success).toBe(false)
    expect(JobPayload.safeParse({ ...job, bases: [{ ...pin, size: 4 * 1024 * 1024 + 1 }] }).success).toBe(false)
    expect(JobPayload.safeParse({ ...job, bases: [{ ...pin, ref: 'x'.repeat(513) }] }).success).toBe(false)
    expect(JobPayload.safeParse({ ...job, bases: [{ ...pin, source: 'registry' }] }).success).toBe(false)
    expect(JobPayload.safeParse({ ...job, bases: Array(MAX_BASE_PINS + 1).fill(pin) }).success).toBe(false)
    // The most pins a job may carry still fit in a frame.
    const full = { ...job, bases: Array(MAX_BASE_PINS).fill({ ...pin, ref: 'r'.repeat(512) }) }
    expect(canonicalJson(full).length).toBeLessThan(MAX_FRAME_BYTES / 4)
  })

  it('requires provenance on a successful result only', () => {
    const base = { jobId: 'abcdefgh12', platform: 'linux/amd64' }
    expect(ResultPayload.safeParse({ ...base, status: 'succeeded', digest, mediaType: 'm', size: 1, blobs: [] }).success).toBe(false)
    expect(ResultPayload.safeParse({ ...base, status: 'failed', error: 'step 3 exited 1' }).success).toBe(true)
  })

  it('round-trips frames and refuses non-canonical or oversized ones', () => {
    const frame = { envelope: { type: 'job', x: 1 }, certs: [] }
    expect(decodeFrame(encodeFrame(frame))).toEqual(frame)
    expect(() => decodeFrame(new TextEncoder().encode(JSON.stringify({ envelope: { type: 'job' }, certs: [] })))).toThrow()
    expect(() => decodeFrame(new TextEncoder().encode(canonicalJson({ certs: [1, 2, 3, 4, 5], envelope: { type: 'x' } })))).toThrow()
    expect(() => encodeFrame({ envelope: { type: 'x', pad: 'y'.repeat(MAX_FRAME_BYTES) }, certs: [] })).toThrow(RangeError)
  })
})
