/**
 * The SIF header and descriptor codecs: field offsets against hand-placed
 * bytes, round trips, and the refusals (bad magic, version, truncation,
 * limits), each with its own error class.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  SifInvalidError, SifLimitError, SifNoRootPartitionError, decodeDescriptor, decodeHeader, encodeDescriptor, encodeHeader,
  primaryPartition, readSif, writeSif
} from '../../../src/sif/index.ts'
import type { SifDescriptor } from '../../../src/sif/index.ts'
import { tempDirs } from '../../helpers/temp.ts'

const dirs = tempDirs('kiln-sif-format-')
afterAll(() => { dirs.cleanup() })

const header = {
  launchScript: '#!/usr/bin/env run-singularity\n', archCode: '04', id: '0123abcd-4567-89ef-0123-456789abcdef',
  createdAt: 1700000000, modifiedAt: 1700000001, descriptorsFree: 47, descriptorsTotal: 48, descriptorsOffset: 4096,
  descriptorsSize: 48 * 585, dataOffset: 32176, dataSize: 10
}

describe('SIF header', () => {
  it('puts each field at the offset sylabs/sif reads it from', () => {
    const b = Buffer.from(encodeHeader(header))
    expect(b.byteLength).toBe(128)
    expect(b.subarray(32, 42).toString('latin1')).toBe('SIF_MAGIC\0')
    expect(b.subarray(42, 45).toString('latin1')).toBe('01\0')
    expect(b.subarray(45, 48).toString('latin1')).toBe('04\0')
    expect(b.subarray(48, 64).toString('hex')).toBe('0123abcd456789ef0123456789abcdef')
    expect(b.readBigInt64LE(64)).toBe(1700000000n)
    expect(b.readBigInt64LE(88)).toBe(48n)
    expect(b.readBigInt64LE(120)).toBe(10n)
    expect(decodeHeader(b)).toEqual({ ...header, version: '01', arch: 'arm64' })
  })

  it('refuses what is not a SIF of version 01, by class', () => {
    const b = Buffer.from(encodeHeader(header))
    expect(() => decodeHeader(b.subarray(0, 100))).toThrow(SifInvalidError)
    const noMagic = Buffer.from(b); noMagic.write('NOT_MAGIC', 32)
    expect(() => decodeHeader(noMagic)).toThrow(/no SIF_MAGIC/)
    const v2 = Buffer.from(b); v2.write('02', 42)
    expect(() => decodeHeader(v2)).toThrow(SifInvalidError)
    const badSize = Buffer.from(b); badSize.writeBigInt64LE(5n, 104)
    expect(() => decodeHeader(badSize)).toThrow(/total x 585/)
  })

  it('refuses a launch script that leaves no room for its NUL', () => {
    expect(() => encodeHeader({ ...header, launchScript: 'x'.repeat(32) })).toThrow(SifLimitError)
  })
})

describe('SIF descriptor', () => {
  const partition: SifDescriptor = {
    dataType: 'partition', used: true, id: 3, groupId: 1, link: { kind: 'none' }, offset: 36864, size: 4096, sizeWithPadding: 8188,
    createdAt: 0, modifiedAt: 0, name: 'rootfs', partition: { fsType: 'squashfs', partType: 'primarySystem', arch: 'amd64' }
  }

  it('is 585 bytes with fields where rawDescriptor has them', () => {
    const b = Buffer.from(encodeDescriptor(partition))
    expect(b.byteLength).toBe(585)
    expect(b.readInt32LE(0)).toBe(0x4004)
    expect(b[4]).toBe(1)
    expect(b.readUInt32LE(5)).toBe(3)
    expect(b.readUInt32LE(9)).toBe(0xf0000001)
    expect(b.readBigInt64LE(17)).toBe(36864n)
    expect(b.subarray(73, 79).toString()).toBe('rootfs')
    expect([b.readInt32LE(201), b.readInt32LE(205), b.subarray(209, 212).toString('latin1')]).toEqual([1, 2, '02\0'])
    expect(decodeDescriptor(b)).toEqual(partition)
  })

  it('stores links to groups with the group mask and keeps signature entities', () => {
    const sig: SifDescriptor = {
      dataType: 'signature', used: true, id: 4, groupId: 0, link: { kind: 'group', id: 1 }, offset: 40960, size: 10, sizeWithPadding: 10,
      createdAt: 5, modifiedAt: 5, name: '', signature: { hashType: 'sha384', entity: 'ab'.repeat(20) }
    }
    const b = Buffer.from(encodeDescriptor(sig))
    expect(b.readUInt32LE(13)).toBe(0xf0000001)
    expect(b.readUInt32LE(9)).toBe(0xf0000000)
    expect(decodeDescriptor(b)).toEqual(sig)
    expect(decodeDescriptor(encodeDescriptor({ ...sig, link: { kind: 'object', id: 2 } })).link).toEqual({ kind: 'object', id: 2 })
  })

  it('keeps a type it does not know as its number', () => {
    const b = Buffer.from(encodeDescriptor(partition))
    b.writeInt32LE(0x4fff, 0)
    expect(decodeDescriptor(b).dataType).toBe(0x4fff)
  })
})

describe('readSif', () => {
  it('refuses an object that ends past the end of the file', async () => {
    const path = join(dirs.make(), 'a.sif')
    await writeSif(path, { id: header.id, time: 0, objects: [{ dataType: 'labels', data: Buffer.from('{"a":"b"}') }] })
    writeFileSync(path, readFileSync(path).subarray(0, 32176 + 3))
    await expect(readSif(path)).rejects.toThrow(SifInvalidError)
  })

  it('finds no root partition in a SIF of metadata alone, or of an ext3 root', async () => {
    const dir = dirs.make()
    await writeSif(join(dir, 'a.sif'), { id: header.id, time: 0, objects: [{ dataType: 'labels', data: Buffer.from('{}') }] })
    expect(() => primaryPartition({ path: 'a.sif', size: 0, header: decodeHeader(encodeHeader(header)), objects: [] })).toThrow(SifNoRootPartitionError)
    await writeSif(join(dir, 'b.sif'), { id: header.id, time: 0, objects: [{ dataType: 'partition', data: Buffer.alloc(8), partition: { fsType: 'ext3', partType: 'primarySystem', arch: 'amd64' } }] })
    const ext3 = await readSif(join(dir, 'b.sif'))
    expect(() => primaryPartition(ext3)).toThrow(/ext3, not squashfs/)
  })

  it('refuses more objects than descriptors', async () => {
    const objects = Array.from({ length: 49 }, () => ({ dataType: 'generic' as const, data: Buffer.from('x') }))
    await expect(writeSif(join(dirs.make(), 'c.sif'), { id: header.id, time: 0, objects })).rejects.toThrow(SifLimitError)
  })
})
