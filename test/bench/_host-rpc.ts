/**
 * The parent/child protocol of the benches that spread nodes over several
 * processes (discovery.ts, farm.ts): the parent forks a host script and
 * sends it `{ id, op, args }` requests over IPC; the host runs the op and
 * answers `{ id, ok, result | error }`. `stop` ends the host; so does the
 * parent going away.
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'

export interface HostRequest<Op extends string = string> { id: number, op: Op, args?: unknown }
export interface HostReply { id: number, ok: boolean, result?: unknown, error?: string }

/** One child process running `script`; call() sends one request and waits for its reply, within ms. */
export class BenchHost<Op extends string> {
  private readonly child: ChildProcess
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  private nextId = 0
  exited = false
  readonly index: number

  constructor (script: string, index: number, execArgv: string[] = process.execArgv) {
    this.index = index
    this.child = fork(script, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (reply: HostReply) => {
      const w = this.waiting.get(reply.id)
      this.waiting.delete(reply.id)
      if (reply.ok) w?.resolve(reply.result)
      else w?.reject(new Error(`host ${index}: ${reply.error ?? 'failed'}`))
    })
    this.child.on('exit', (code, signal) => {
      this.exited = true
      for (const w of this.waiting.values()) w.reject(new Error(`host ${index} exited (${code ?? signal})`))
      this.waiting.clear()
    })
  }

  async call<R> (op: Op | 'stop', args: unknown, ms: number): Promise<R> {
    if (this.exited) throw new Error(`host ${this.index} has exited`)
    const id = this.nextId++
    return await new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting.delete(id); reject(new Error(`host ${this.index}: ${op} took more than ${ms} ms`)) }, ms)
      this.waiting.set(id, { resolve: v => { clearTimeout(timer); resolve(v as R) }, reject: e => { clearTimeout(timer); reject(e) } })
      this.child.send({ id, op, args } satisfies HostRequest)
    })
  }

  /** Asks the host to stop its nodes; kills it if it has not exited within ms. */
  async close (ms: number): Promise<void> {
    if (this.exited) return
    const exited = new Promise<void>(resolve => this.child.once('exit', () => { resolve() }))
    await Promise.race([this.call('stop', undefined, ms).catch(() => {}), exited])
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, 2000)
    await exited
    clearTimeout(timer)
  }

  kill (): void {
    if (!this.exited) this.child.kill('SIGKILL')
  }
}

/**
 * The host side: runs each request's op and answers it; `stop` (and the
 * parent going away) runs stopAll and exits.
 */
export function serveHost (ops: Record<string, (args: never) => Promise<unknown>>, stopAll: () => Promise<void>): void {
  process.on('message', (msg: HostRequest) => {
    // The parent is the only sender, and it sends each op its own argument type.
    const run = ops[msg.op] as ((args: unknown) => Promise<unknown>) | undefined
    const done = run !== undefined ? run(msg.args) : Promise.reject(new Error(`no op ${msg.op}`))
    done.then(
      result => { process.send?.({ id: msg.id, ok: true, result } satisfies HostReply) },
      (err: unknown) => { process.send?.({ id: msg.id, ok: false, error: String((err as Error)?.stack ?? err) } satisfies HostReply) }
    ).finally(() => { if (msg.op === 'stop') setTimeout(() => process.exit(0), 100) })
  })
  // The parent is gone (finished, crashed or killed): stop the nodes, and exit whatever they do.
  process.on('disconnect', () => {
    setTimeout(() => process.exit(1), 5000).unref()
    void stopAll().finally(() => process.exit(0))
  })
}
