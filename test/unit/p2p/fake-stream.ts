/**
 * A stand-in for a libp2p Stream, enough for StreamReader and the blob
 * handlers: the test pushes what the remote sends and reads what the code
 * under test sent. send() never applies backpressure.
 */
import type { Stream } from '@libp2p/interface'

export class FakeStream extends EventTarget {
  readonly sent: Uint8Array[] = []
  status: 'open' | 'closed' | 'aborted' = 'open'
  remoteWriteStatus: 'writable' | 'closed' = 'writable'
  readableEnded = false
  readBufferLength = 0
  abortedWith: Error | undefined
  closed = false

  private readonly pending: Uint8Array[] = []
  private listening = false

  /** Bytes from the remote end; held until a 'message' listener exists, as libp2p streams do. */
  push (bytes: Uint8Array): void {
    if (!this.listening) {
      this.pending.push(bytes)
      this.readBufferLength += bytes.byteLength
      return
    }
    this.dispatchEvent(Object.assign(new Event('message'), { data: bytes }))
  }

  /** The remote closes its writable end. */
  endRemote (): void {
    this.remoteWriteStatus = 'closed'
    this.dispatchEvent(new Event('remoteCloseWrite'))
    if (this.listening) this.dispatchEvent(new Event('end'))
  }

  override addEventListener (...args: Parameters<EventTarget['addEventListener']>): void {
    super.addEventListener(...args)
    if (args[0] !== 'message' || this.listening) return
    this.listening = true
    queueMicrotask(() => {
      for (const bytes of this.pending.splice(0)) this.dispatchEvent(Object.assign(new Event('message'), { data: bytes }))
      this.readBufferLength = 0
      if (this.remoteWriteStatus === 'closed') this.dispatchEvent(new Event('end'))
    })
  }

  send (data: Uint8Array): boolean {
    if (this.status !== 'open') throw new Error(`send on a ${this.status} stream`)
    this.sent.push(Uint8Array.from(data))
    return true
  }

  async onDrain (): Promise<void> {}

  async close (): Promise<void> {
    this.closed = true
    this.status = 'closed'
    this.dispatchEvent(Object.assign(new Event('close'), { error: undefined }))
  }

  abort (err: Error): void {
    if (this.status === 'aborted') return
    this.abortedWith = err
    this.status = 'aborted'
    this.dispatchEvent(Object.assign(new Event('close'), { error: err }))
  }

  /** Everything sent, as one buffer. */
  output (): Uint8Array {
    return Uint8Array.from(Buffer.concat(this.sent))
  }

  asStream (): Stream {
    return this as unknown as Stream
  }
}
