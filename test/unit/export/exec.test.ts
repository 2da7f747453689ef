/**
 * type=exec against small exporter programs written here: a node script that
 * checks what the protocol promises (request on stdin, layout in the working
 * directory) and shell scripts that fail in each way the protocol names.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ExporterRequestSchema } from '../../../protocols/exporter.ts'
import type { ContentStore } from '../../../src/content/index.ts'
import { createExporter, parseOutputSpec } from '../../../src/export/index.ts'
import { makeMultiArch, makeStore, tempDirs } from './helpers.ts'

const dirs = tempDirs()
let store: ContentStore
let image: Awaited<ReturnType<typeof makeMultiArch>>
let scripts: string
const exporter = createExporter()

// Copies the request and a listing of the layout it was given to a file, then reports success.
const RECORDER = `
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
const request = JSON.parse(readFileSync(0, 'utf8'))
const index = JSON.parse(readFileSync('index.json', 'utf8'))
const blobs = readdirSync('blobs/sha256').sort()
writeFileSync(process.argv[2], JSON.stringify({ request, cwd: process.cwd(), index, blobs, env: process.env.KILN_EXPORT_LAYOUT }))
console.error('uploading...')
console.log('some chatter first')
console.log(JSON.stringify({ ok: true, location: 'test://' + request.tags.join('+'), digest: request.manifests[1].digest }))
`

function script (name: string, text: string): string {
  const path = join(scripts, name)
  writeFileSync(path, text, { mode: 0o755 })
  return path
}

beforeAll(async () => {
  store = await makeStore(dirs)
  image = await makeMultiArch(store)
  scripts = dirs.make('kiln-exec-scripts-')
})
afterAll(() => { dirs.cleanup() })

describe('exec exporter', () => {
  it('gives the program a layout and a request, and reports its result line', async () => {
    const recorder = script('recorder.mjs', RECORDER)
    const record = join(scripts, 'record.json')
    const spec = parseOutputSpec(`type=exec,cmd=${process.execPath},arg=${recorder},arg=${record},opt.bucket=b1`)
    const r = await exporter.export({ store, root: image.index }, spec, { tags: ['hpc/app:1', 'hpc/app:latest'] })
    expect(r).toEqual({ description: 'test://hpc/app:1+hpc/app:latest', digest: image.arm64.manifest.digest })
    const seen = JSON.parse(readFileSync(record, 'utf8')) as { request: unknown, cwd: string, index: { manifests: Array<{ digest: string, annotations: Record<string, string> }> }, blobs: string[], env: string }
    const request = ExporterRequestSchema.parse(seen.request)
    expect(request).toMatchObject({ version: 1, root: { digest: image.index.digest }, tags: ['hpc/app:1', 'hpc/app:latest'], options: { bucket: 'b1' } })
    expect(request.manifests.map(m => m.digest)).toEqual([image.amd64.manifest.digest, image.arm64.manifest.digest])
    expect(seen.cwd).toBe(request.layout)
    expect(seen.env).toBe(request.layout)
    expect(seen.index.manifests.map(m => m.annotations['org.opencontainers.image.ref.name'])).toEqual(['1', 'latest'])
    expect(seen.blobs).toHaveLength(7)
    // The working directory is gone afterwards.
    expect(existsSync(request.layout)).toBe(false)
  })

  it('fails with the exit code and the tail of stderr', async () => {
    const bad = script('bad.sh', '#!/bin/sh\ncat >/dev/null\necho "step one" >&2\necho "bucket refused: 403" >&2\nexit 3\n')
    const err = await exporter.export({ store, root: image.index }, parseOutputSpec(`type=exec,cmd=${bad}`)).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'ExecExporterFailedError', exitCode: 3, stderrTail: 'step one\nbucket refused: 403' })
    expect((err as Error).message).toMatch(/exited with code 3[\s\S]*bucket refused: 403/)
  })

  it('fails when the program says ok: false, even with exit 0', async () => {
    const no = script('no.sh', '#!/bin/sh\necho \'{"ok":false,"error":"quota exceeded"}\'\n')
    await expect(exporter.export({ store, root: image.amd64.manifest }, parseOutputSpec(`type=exec,cmd=${no}`)))
      .rejects.toMatchObject({ name: 'ExecExporterFailedError', message: expect.stringMatching(/quota exceeded/) })
  })

  it('refuses a missing or malformed result line', async () => {
    const silent = script('silent.sh', '#!/bin/sh\nexit 0\n')
    await expect(exporter.export({ store, root: image.amd64.manifest }, parseOutputSpec(`type=exec,cmd=${silent}`))).rejects.toMatchObject({ name: 'ExecExporterProtocolError' })
    const junk = script('junk.sh', '#!/bin/sh\necho \'{"ok":true}\'\n')
    await expect(exporter.export({ store, root: image.amd64.manifest }, parseOutputSpec(`type=exec,cmd=${junk}`))).rejects.toThrow(/location/)
  })

  it('kills a program that floods stdout', async () => {
    const flood = script('flood.sh', '#!/bin/sh\nyes kiln\n')
    await expect(exporter.export({ store, root: image.amd64.manifest }, parseOutputSpec(`type=exec,cmd=${flood}`))).rejects.toMatchObject({ name: 'ExecExporterProtocolError' })
  })

  it('kills a program (and its children) that runs past the timeout', async () => {
    const slow = script('slow.sh', '#!/bin/sh\nsleep 30 &\nsleep 30\n')
    const started = Date.now()
    await expect(exporter.export({ store, root: image.amd64.manifest }, parseOutputSpec(`type=exec,cmd=${slow},timeout=0.3`))).rejects.toMatchObject({ name: 'ExecExporterTimeoutError' })
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it('reports a program that cannot be started', async () => {
    await expect(exporter.export({ store, root: image.amd64.manifest }, parseOutputSpec(`type=exec,cmd=${join(scripts, 'does-not-exist')}`)))
      .rejects.toMatchObject({ name: 'ExecExporterFailedError', message: expect.stringMatching(/cannot run/) })
  })
})

describe('kiln (peer network) exporter', () => {
  it('says what is missing when no network is wired', async () => {
    await expect(exporter.export({ store, root: image.index }, parseOutputSpec('type=kiln'))).rejects.toMatchObject({ name: 'ExporterUnavailableError' })
  })

  it('hands the image to the provider it is given', async () => {
    const provided: string[] = []
    const withNet = createExporter({ network: { provideImage: async (img) => { provided.push(img.root.digest); return { description: 'provided on the DHT' } } } })
    expect(await withNet.export({ store, root: image.index }, parseOutputSpec('type=kiln'))).toEqual({ description: 'provided on the DHT', digest: image.index.digest })
    expect(provided).toEqual([image.index.digest])
  })
})
