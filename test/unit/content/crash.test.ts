import { describe, it, expect } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createFsContentStore } from '../../../src/content/index.ts'

const child = resolve(import.meta.dirname, '../../fixtures/content/slow-ingest.ts')

describe('fs content store crash safety', () => {
  it('a SIGKILL during an ingest leaves no readable partial blob, and the temp file is reclaimed', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kiln-crash-'))
    try {
      const proc = spawn(process.execPath, [child, root], { stdio: ['ignore', 'pipe', 'inherit'] })
      await new Promise<void>((resolveWait, reject) => {
        proc.stdout.on('data', (d: Buffer) => { if (d.toString().includes('writing')) resolveWait() })
        proc.on('exit', code => { reject(new Error(`child exited early with ${code}`)) })
      })
      const tmpFiles = await readdir(join(root, 'ingest'))
      expect(tmpFiles.length).toBe(1)
      proc.kill('SIGKILL')
      await new Promise(resolveExit => proc.on('exit', resolveExit))

      expect(await readdir(join(root, 'blobs', 'sha256'))).toEqual([])
      const store = await createFsContentStore({ root })
      const blobs = []
      for await (const b of store.walk()) blobs.push(b)
      expect(blobs).toEqual([])
      expect(await readdir(join(root, 'ingest'))).toEqual([])
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })
})
