import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { extract } from 'tar-stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { packContext } from '../../../src/requester/context-pack.ts'

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'kiln-ctx-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

async function digestOf (src: AsyncIterable<Uint8Array>): Promise<string> {
  const h = createHash('sha256')
  for await (const c of src) h.update(c)
  return h.digest('hex')
}

async function entriesOf (src: AsyncIterable<Uint8Array>): Promise<string[]> {
  const x = extract()
  const names: string[] = []
  const done = (async () => {
    for await (const e of x) { names.push(e.header.name); e.resume() }
  })()
  await pipeline(Readable.from(src), x)
  await done
  return names
}

describe('packContext', () => {
  it('packs the same tree to the same bytes regardless of times, honouring .dockerignore', async () => {
    await mkdir(join(dir, 'src/deep'), { recursive: true })
    await mkdir(join(dir, 'secrets'))
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n')
    await writeFile(join(dir, 'src/deep/a.c'), 'int main(){}')
    await writeFile(join(dir, 'secrets/key'), 'k')
    await writeFile(join(dir, 'secrets/public.pem'), 'p')
    await writeFile(join(dir, 'x.log'), 'l')
    await symlink('src/deep/a.c', join(dir, 'link'))
    await writeFile(join(dir, '.dockerignore'), 'secrets\n!secrets/public.pem\n**/*.log\n')
    expect(await entriesOf(packContext(dir))).toEqual(['.dockerignore', 'Dockerfile', 'link', 'secrets', 'secrets/public.pem', 'src', 'src/deep', 'src/deep/a.c'])
    const first = await digestOf(packContext(dir))
    await utimes(join(dir, 'src/deep/a.c'), new Date(1e12), new Date(1e12))
    expect(await digestOf(packContext(dir))).toBe(first)
    await writeFile(join(dir, 'src/deep/a.c'), 'int main(){return 1;}')
    expect(await digestOf(packContext(dir))).not.toBe(first)
  })

  it("packs by the recipe's own ignore file when it has one", async () => {
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n')
    await writeFile(join(dir, '.dockerignore'), 'a.txt\n')
    await writeFile(join(dir, 'Dockerfile.dockerignore'), 'b.txt\n')
    await writeFile(join(dir, 'a.txt'), 'a')
    await writeFile(join(dir, 'b.txt'), 'b')
    expect(await entriesOf(packContext(dir))).toEqual(['.dockerignore', 'Dockerfile', 'Dockerfile.dockerignore', 'b.txt'])
    expect(await entriesOf(packContext(dir, { recipeFile: join(dir, 'Dockerfile') }))).toEqual(['.dockerignore', 'Dockerfile', 'Dockerfile.dockerignore', 'a.txt'])
  })
})
