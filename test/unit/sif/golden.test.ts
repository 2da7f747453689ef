/**
 * The golden images of sylabs/sif (test/fixtures/sif, made by its
 * gen_sifs.go) parse to the descriptors their generator asked for, and
 * writing their objects again with kiln's writer gives the same bytes.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { primaryPartition, readObject, readSif, writeSif } from '../../../src/sif/index.ts'
import type { SifObjectInput } from '../../../src/sif/index.ts'
import { tempDirs } from '../../helpers/temp.ts'

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'sif')
const GO_ZERO_TIME = -62135596800 // time.Time{}.Unix(): what OptCreateDeterministic writes
const dirs = tempDirs('kiln-sif-golden-')
afterAll(() => { dirs.cleanup() })

describe('sylabs/sif golden images', () => {
  it('empty-id.sif: no objects, the UUID given, 48 free descriptors from 4096', async () => {
    const s = await readSif(join(FIXTURES, 'empty-id.sif'))
    expect(s.header).toMatchObject({ id: '3fa802cc-358b-45e3-bcc0-69dc7a45f9f8', version: '01', arch: 'unknown', descriptorsTotal: 48, descriptorsFree: 48, descriptorsOffset: 4096, descriptorsSize: 48 * 585, dataOffset: 32176, dataSize: 0 })
    expect(s.objects).toEqual([])
  })

  it('one-object-time.sif: a JSON.Generic object named data.json, created 2020-06-30T00:01:56Z', async () => {
    const s = await readSif(join(FIXTURES, 'one-object-time.sif'))
    const t = Date.UTC(2020, 5, 30, 0, 1, 56) / 1000
    expect(s.header.createdAt).toBe(t)
    expect(s.objects).toHaveLength(1)
    expect(s.objects[0]).toMatchObject({ dataType: 'genericJson', id: 1, groupId: 1, link: { kind: 'none' }, name: 'data.json', offset: 32176, size: 2, createdAt: t })
    expect(Buffer.from(await readObject(s, s.objects[0]!)).toString()).toBe('{}')
  })

  it('one-group.sif: a raw system partition and the primary squashfs, both 386, aligned to 4096', async () => {
    const s = await readSif(join(FIXTURES, 'one-group.sif'))
    expect(s.header).toMatchObject({ arch: '386', archCode: '01', id: '00000000-0000-0000-0000-000000000000', createdAt: GO_ZERO_TIME })
    expect(s.objects.map(o => [o.id, o.groupId, o.dataType, o.partition])).toEqual([
      [1, 1, 'partition', { fsType: 'raw', partType: 'system', arch: '386' }],
      [2, 1, 'partition', { fsType: 'squashfs', partType: 'primarySystem', arch: '386' }]
    ])
    expect(s.objects.map(o => [o.offset, o.size, o.sizeWithPadding])).toEqual([[32768, 4, 596], [36864, 4096, 8188]])
    expect(primaryPartition(s).id).toBe(2)
  })

  it.each([
    ['one-group-signed-dsse.sif', 'sha256', ''],
    ['one-group-signed-pgp.sif', 'sha256', '12045c8c0b1004d058de4beda20c27ee7ff7ba84']
  ])('%s: a signature in no group, linked to group 1', async (file, hashType, entity) => {
    const s = await readSif(join(FIXTURES, file))
    const sig = s.objects.find(o => o.dataType === 'signature')
    expect(sig).toMatchObject({ id: 3, groupId: 0, link: { kind: 'group', id: 1 }, signature: { hashType, entity } })
    expect(s.header.descriptorsFree).toBe(45)
  })

  it.each(['one-group.sif', 'one-group-signed-pgp.sif', 'one-object-time.sif', 'empty-id.sif'])('%s is written back byte for byte', async (file) => {
    const s = await readSif(join(FIXTURES, file))
    const objects: SifObjectInput[] = []
    for (const o of s.objects) {
      if (typeof o.dataType === 'number') throw new Error('unknown type in a golden image')
      objects.push({ dataType: o.dataType, data: await readObject(s, o), groupId: o.groupId, link: o.link, name: o.name, ...(o.partition === undefined ? {} : { partition: o.partition }), ...(o.signature === undefined ? {} : { signature: o.signature }) })
    }
    const out = join(dirs.make(), 'out.sif')
    await writeSif(out, { id: s.header.id, time: s.header.createdAt, launchScript: s.header.launchScript, objects })
    expect(readFileSync(out).equals(readFileSync(join(FIXTURES, file)))).toBe(true)
  })
})
