/**
 * type=s3: the static registry site (./site-writer.ts) in an S3-compatible
 * bucket. Every object carries its Content-Type as object metadata, so a
 * bucket served as a website (or through a CDN) answers manifests with the
 * right type without any server configuration. Docker-Content-Digest cannot
 * be set as a response header by S3; clients that pull by tag compute the
 * digest themselves.
 *
 * Credentials: access_key_id / secret_access_key / session_token from the
 * spec, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
 * from the components' environment, else the SDK's default chain (~/.aws
 * files, SSO, instance roles). Blobs are uploaded with one PutObject each:
 * objects above 5 GiB need multipart upload, which this does not do yet.
 */
import { createReadStream } from 'node:fs'
import type { S3ClientConfig } from '@aws-sdk/client-s3'
import { DEFAULT_S3_REGION } from './constants.ts'
import { ObjectStoreError, OutputSpecInvalidError } from './errors.ts'
import type { ExportImage, ExportOptions, ExportResult, ExporterComponents } from './index.ts'
import { targetNames } from './names.ts'
import type { ObjectStore } from './object-store.ts'
import type { S3Spec } from './output-spec.ts'
import { writeSite } from './site-writer.ts'
import { AbortErrorName, isErrorOf } from '../util/error-class.ts'

const MAX_SINGLE_PUT = 5 * 1024 * 1024 * 1024

function statusOf (err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
}

function wrap (what: string, err: unknown): Error {
  if (isErrorOf(err, AbortErrorName)) return err
  return new ObjectStoreError(`${what}: ${(err as Error).name}: ${(err as Error).message}`)
}

/**
 * An ObjectStore over the AWS SDK v3 S3 client. The SDK is loaded here, on
 * first use, so that the other exporters neither pay its start-up time nor
 * need it installed.
 */
export async function createS3ObjectStore (spec: S3Spec, env: NodeJS.ProcessEnv = process.env): Promise<ObjectStore> {
  const { GetObjectCommand, HeadObjectCommand, NoSuchKey, PutObjectCommand, S3Client } = await import('@aws-sdk/client-s3')
  const config: S3ClientConfig = {
    region: spec.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? DEFAULT_S3_REGION,
    forcePathStyle: spec.usePathStyle,
    // The SDK's default since 2025 streams uploads as aws-chunked with a
    // checksum trailer, which many S3-compatible servers store verbatim or
    // refuse; the content is content-addressed and checked on pull anyway.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(spec.endpointUrl === undefined ? {} : { endpoint: spec.endpointUrl })
  }
  const accessKeyId = spec.accessKeyId ?? env.AWS_ACCESS_KEY_ID
  const secretAccessKey = spec.secretAccessKey ?? env.AWS_SECRET_ACCESS_KEY
  const sessionToken = spec.accessKeyId !== undefined ? spec.sessionToken : env.AWS_SESSION_TOKEN
  // Without keys the SDK's own chain applies (~/.aws files, SSO, instance roles).
  if (accessKeyId !== undefined && secretAccessKey !== undefined) {
    config.credentials = { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) }
  }
  const client = new S3Client(config)
  const key = (path: string): string => spec.prefix === '' ? path : `${spec.prefix}/${path}`
  const location = `s3://${spec.bucket}${spec.prefix === '' ? '' : `/${spec.prefix}`}`
  const opts = (signal?: AbortSignal): { abortSignal?: AbortSignal } => signal === undefined ? {} : { abortSignal: signal }
  return {
    location,
    stat: async (path, signal) => {
      try {
        const r = await client.send(new HeadObjectCommand({ Bucket: spec.bucket, Key: key(path) }), opts(signal))
        return { size: r.ContentLength ?? 0 }
      } catch (err) {
        if (statusOf(err) === 404) return undefined
        throw wrap(`HEAD ${location}/${path}`, err)
      }
    },
    get: async (path, maxSize, signal) => {
      try {
        const r = await client.send(new GetObjectCommand({ Bucket: spec.bucket, Key: key(path) }), opts(signal))
        if ((r.ContentLength ?? 0) > maxSize) throw new ObjectStoreError(`${location}/${path} is ${r.ContentLength} bytes, over the limit of ${maxSize}`)
        const bytes = await r.Body?.transformToByteArray()
        if (bytes !== undefined && bytes.byteLength > maxSize) throw new ObjectStoreError(`${location}/${path} is over the limit of ${maxSize} bytes`)
        return bytes ?? new Uint8Array()
      } catch (err) {
        if (statusOf(err) === 404 || isErrorOf(err, NoSuchKey)) return undefined
        if (err instanceof ObjectStoreError) throw err
        throw wrap(`GET ${location}/${path}`, err)
      }
    },
    put: async (path, bytes, contentType, signal) => {
      try {
        await client.send(new PutObjectCommand({ Bucket: spec.bucket, Key: key(path), Body: bytes, ContentType: contentType, ContentLength: bytes.byteLength }), opts(signal))
      } catch (err) { throw wrap(`PUT ${location}/${path}`, err) }
    },
    putBlob: async (path, store, blob, contentType, signal) => {
      if (blob.size > MAX_SINGLE_PUT) throw new ObjectStoreError(`${blob.digest} is ${blob.size} bytes; uploads above 5 GiB (multipart) are not supported yet`)
      try {
        await client.send(new PutObjectCommand({
          Bucket: spec.bucket, Key: key(path), Body: createReadStream(await store.path(blob.digest)), ContentType: contentType, ContentLength: blob.size
        }), opts(signal))
      } catch (err) { throw wrap(`PUT ${location}/${path}`, err) }
    }
  }
}

export async function exportS3 (image: ExportImage, spec: S3Spec, options: ExportOptions, components: ExporterComponents): Promise<ExportResult> {
  const names = targetNames(spec.names, options)
  if (names.length === 0) throw new OutputSpecInvalidError('type=s3 needs name=REPO[:TAG] (or a -t tag)', ['name'])
  const site = components.objectStore?.(spec) ?? await createS3ObjectStore(spec, components.env)
  const { written } = await writeSite(image, names, site, { ...options, type: 's3' })
  return { description: `${site.location} (${written.join(', ')})`, digest: image.root.digest }
}
