import { describe, expect, it } from 'vitest'
import { ByteReader, FRAME_MAX, StreamReader, encodeFrame, jsonFrame, parseJsonFrame } from '../../../src/p2p/stream-io.ts'
import { FakeStream } from './fake-stream.ts'

const wait = { idleTimeoutMs: 1000 }

describe('frames: u16 big-endian length, then the bytes', () => {
  it('encodes the length big-endian and refuses more than 65535 bytes', () => {
    const f = encodeFrame(new Uint8Array(258).fill(7))
    expect([...f.subarray(0, 2)]).toEqual([1, 2])
    expect(f.byteLength).toBe(260)
    expect(encodeFrame(new Uint8Array(FRAME_MAX)).byteLength).toBe(FRAME_MAX + 2)
    expect(() => encodeFrame(new Uint8Array(FRAME_MAX + 1))).toThrow(RangeError)
    expect([...encodeFrame(new Uint8Array(0))]).toEqual([0, 0])
  })

  it('reads frames split across messages, several in one message, then a clean end', async () => {
    const s = new FakeStream()
    const r = new StreamReader(s.asStream(), 1 << 20)
    const a = jsonFrame({ digest: 'x', offset: 1 })
    const b = jsonFrame({ n: 2 })
    const both = new Uint8Array([...a, ...b])
    s.push(both.subarray(0, 1)) // half the length prefix
    const first = r.readFrame(100, wait)
    s.push(both.subarray(1, 5))
    s.push(both.subarray(5))
    expect(parseJsonFrame((await first)!)).toEqual({ digest: 'x', offset: 1 })
    expect(parseJsonFrame((await r.readFrame(100, wait))!)).toEqual({ n: 2 })
    s.endRemote()
    expect(await r.readFrame(100, wait)).toBeUndefined()
    expect(r.done).toBe(true)
  })

  it('reads what a peer wrote and closed before the reader was attached, even when libp2p already said the readable end ended', async () => {
    // libp2p 3 after dialProtocol on a record stream: readableEnded true, the bytes still buffered,
    // replayed to the first message listener, and no 'end' after them.
    const s = new FakeStream()
    s.push(encodeFrame(new TextEncoder().encode('record')))
    s.remoteWriteStatus = 'closed'
    s.readableEnded = true
    const r = new StreamReader(s.asStream(), 1 << 20)
    expect(new TextDecoder().decode(await r.readFrame(100, wait))).toBe('record')
    expect(await r.readFrame(100, { idleTimeoutMs: 200 })).toBeUndefined()
    expect(r.done).toBe(true)
    // Closed with nothing buffered: a clean end at once.
    const empty = new FakeStream()
    empty.remoteWriteStatus = 'closed'
    empty.readableEnded = true
    expect(await new StreamReader(empty.asStream(), 1 << 20).readFrame(100, { idleTimeoutMs: 200 })).toBeUndefined()
  })

  it('refuses a frame longer than the reader allows, before reading its body', async () => {
    const s = new FakeStream()
    const r = new StreamReader(s.asStream(), 1 << 20)
    s.push(new Uint8Array([0x10, 0x01]))
    await expect(r.readFrame(4096, wait)).rejects.toMatchObject({ name: 'StreamProtocolError' })
  })

  it('fails a frame cut short by the end of the stream', async () => {
    const s = new FakeStream()
    const r = new StreamReader(s.asStream(), 1 << 20)
    s.push(encodeFrame(new Uint8Array(10)).subarray(0, 6))
    s.endRemote()
    await expect(r.readFrame(100, wait)).rejects.toMatchObject({ name: 'StreamProtocolError' })
  })

  it('times out on a silent peer and honours the abort signal', async () => {
    const s = new FakeStream()
    const r = new StreamReader(s.asStream(), 1 << 20)
    await expect(r.readFrame(100, { idleTimeoutMs: 30 })).rejects.toMatchObject({ name: 'TimeoutError' })
    const ac = new AbortController()
    const p = r.readFrame(100, { idleTimeoutMs: 10_000, signal: ac.signal })
    ac.abort(new Error('stop'))
    await expect(p).rejects.toThrow('stop')
  })

  it('aborts the stream when the peer sends more than the reader may buffer', async () => {
    const s = new FakeStream()
    const r = new StreamReader(s.asStream(), 16)
    s.push(new Uint8Array(17))
    expect(s.abortedWith?.name).toBe('StreamProtocolError')
    await expect(r.readFrame(100, wait)).rejects.toMatchObject({ name: 'StreamProtocolError' })
  })

  it('readInto copies exactly the target length across messages and reports progress', async () => {
    const s = new FakeStream()
    const r = new StreamReader(s.asStream(), 1 << 20)
    const target = new Uint8Array(10)
    const seen: number[] = []
    const p = r.readInto(target, wait, n => seen.push(n))
    s.push(Uint8Array.of(1, 2, 3))
    s.push(Uint8Array.of(4, 5, 6, 7, 8, 9, 10, 0))
    await p
    expect([...target]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    expect(seen.reduce((a, b) => a + b, 0)).toBe(10)
    // the rest stays for the next read: a frame of one byte
    s.push(Uint8Array.of(1, 9))
    expect([...(await r.readFrame(100, wait))!]).toEqual([9])
  })

  it('readInto keeps waiting while bytes trickle in slower than its batch, and times out only when they stop', async () => {
    const s = new FakeStream()
    const r = new StreamReader(s.asStream(), 4 << 20)
    const target = new Uint8Array(1 << 20)
    const idle = { idleTimeoutMs: 150 }
    const p = r.readInto(target, idle)
    // 16 pieces, 60 ms apart: the whole read takes ~1 s, far beyond the idle timeout, yet never idles.
    for (let i = 0; i < 16; i++) {
      await new Promise(resolve => setTimeout(resolve, 60))
      s.push(new Uint8Array(1 << 16).fill(i + 1))
    }
    await p
    expect(target[0]).toBe(1)
    expect(target[(1 << 20) - 1]).toBe(16)
    // Now a read that gets half its bytes and then nothing: it times out.
    const stalled = r.readInto(new Uint8Array(1 << 20), idle)
    s.push(new Uint8Array(1 << 19))
    await expect(stalled).rejects.toThrow(/no data for 150 ms/)
  })

  it('refuses a frame that is not UTF-8 JSON', () => {
    expect(() => parseJsonFrame(Uint8Array.of(0xff, 0xfe))).toThrow(expect.objectContaining({ name: 'StreamProtocolError' }) as Error)
    expect(() => parseJsonFrame(new TextEncoder().encode('{"a":'))).toThrow(expect.objectContaining({ name: 'StreamProtocolError' }) as Error)
  })
})

describe('ByteReader landing: a source that writes into the pending readInto\'s target', () => {
  const seq = (from: number, n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff)

  /** A source like a socket's onread: writes into landingSpace() when offered, else pushes from a reused scratch buffer. */
  function source (r: ByteReader): (bytes: Uint8Array) => 'landed' | 'pushed' {
    const scratch = new Uint8Array(64)
    return (bytes) => {
      const space = r.landingSpace()
      if (space !== undefined && space.byteLength >= bytes.byteLength) { space.set(bytes); r.landed(bytes.byteLength); return 'landed' }
      scratch.set(bytes)
      r.push(scratch.subarray(0, bytes.byteLength), true)
      scratch.fill(0xee) // the reader must have copied what it kept
      return 'pushed'
    }
  }

  it('keeps byte order across queued, pushed and landed bytes, and lands the bulk in place', async () => {
    const r = new ByteReader(1 << 20, { landing: true })
    const feed = source(r)
    expect(feed(seq(0, 10))).toBe('pushed') // before any readInto: queued
    const target = new Uint8Array(100)
    let progress = 0
    const done = r.readInto(target, wait, n => { progress += n })
    // The queued bytes went first: what is offered starts after them.
    expect(r.landingSpace()?.byteLength).toBe(90)
    expect(feed(seq(10, 30))).toBe('landed')
    expect(feed(seq(40, 60))).toBe('landed')
    await done
    expect([...target]).toEqual([...seq(0, 100)])
    expect(progress).toBe(100)
    expect(r.landingSpace()).toBeUndefined()
  })

  it('takes pushed bytes straight into a pending target and queues only what is beyond it', async () => {
    const r = new ByteReader(1 << 20, { landing: true })
    const target = new Uint8Array(20)
    const done = r.readInto(target, wait)
    await Promise.resolve()
    r.push(seq(0, 30), true)
    await done
    expect([...target]).toEqual([...seq(0, 20)])
    const rest = new Uint8Array(10)
    await r.readInto(rest, wait)
    expect([...rest]).toEqual([...seq(20, 10)])
  })

  it('fails a landing readInto when the source ends short, and offers no more space after', async () => {
    const r = new ByteReader(1 << 20, { landing: true })
    const feed = source(r)
    const target = new Uint8Array(50)
    const done = r.readInto(target, wait)
    await Promise.resolve()
    feed(seq(0, 20))
    r.end()
    await expect(done).rejects.toThrow(/ended 30 bytes short/)
    expect(r.landingSpace()).toBeUndefined()
  })
})
