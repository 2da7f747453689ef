/**
 * type=exec: hands the image to any program that speaks the external
 * exporter protocol (protocols/exporter.md). kiln writes the image as an OCI
 * image layout in a fresh temp directory, runs the program there with the
 * JSON request on stdin, reads one JSON result line from stdout, and removes
 * the directory. Time and stdout are bounded; the program runs in its own
 * process group so that a kill reaches its children too.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  EXPORTER_DEFAULT_TIMEOUT_MS, EXPORTER_KILL_GRACE_MS, EXPORTER_MAX_STDOUT_BYTES, EXPORTER_PROTOCOL_VERSION,
  EXPORTER_STDERR_TAIL_BYTES, ExporterResultSchema
} from '../../protocols/exporter.ts'
import type { ExporterRequest, ExporterResult } from '../../protocols/exporter.ts'
import { MAX_MANIFEST_SIZE, parseDescribed, writeOciLayout } from '../oci/index.ts'
import type { Descriptor } from '../oci/index.ts'
import { ExecExporterFailedError, ExecExporterProtocolError, ExecExporterTimeoutError } from './errors.ts'
import type { ExportImage, ExportOptions, ExportResult, ExporterComponents } from './index.ts'
import { layoutEntries, targetNames } from './names.ts'
import type { ExecSpec } from './output-spec.ts'
import { scratchPrefix } from '../util/owner.ts'

interface RunOutcome { code: number | null, signal: NodeJS.Signals | null, stdout: Buffer, stderrTail: string, timedOut: boolean, stdoutOverflow: boolean, spawnError?: Error }

async function singleManifests (image: ExportImage): Promise<Descriptor[]> {
  const parsed = parseDescribed(image.root, await image.store.readBytes(image.root.digest, MAX_MANIFEST_SIZE))
  return parsed.kind === 'index' ? parsed.value.manifests : [image.root]
}

function killGroup (pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return
  try { process.kill(-pid, sig) } catch { /* already gone */ }
}

async function run (spec: ExecSpec, cwd: string, input: string, env: NodeJS.ProcessEnv, signal: AbortSignal | undefined): Promise<RunOutcome> {
  const timeoutMs = spec.timeoutSeconds === undefined ? EXPORTER_DEFAULT_TIMEOUT_MS : spec.timeoutSeconds * 1000
  return await new Promise<RunOutcome>((resolve) => {
    const child = spawn(spec.cmd, spec.args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true })
    const stdout: Buffer[] = []
    let stdoutBytes = 0
    let stderrTail = Buffer.alloc(0)
    let timedOut = false
    let stdoutOverflow = false
    let spawnError: Error | undefined
    let grace: NodeJS.Timeout | undefined
    const stop = (): void => {
      killGroup(child.pid, 'SIGTERM')
      grace ??= setTimeout(() => { killGroup(child.pid, 'SIGKILL') }, EXPORTER_KILL_GRACE_MS)
    }
    const timer = setTimeout(() => { timedOut = true; stop() }, timeoutMs)
    const onAbort = (): void => { stop() }
    signal?.addEventListener('abort', onAbort, { once: true })
    child.stdout.on('data', (c: Buffer) => {
      stdoutBytes += c.byteLength
      if (stdoutBytes > EXPORTER_MAX_STDOUT_BYTES) { if (!stdoutOverflow) { stdoutOverflow = true; stop() } return }
      stdout.push(c)
    })
    child.stderr.on('data', (c: Buffer) => {
      stderrTail = Buffer.concat([stderrTail, c])
      if (stderrTail.byteLength > EXPORTER_STDERR_TAIL_BYTES) stderrTail = stderrTail.subarray(stderrTail.byteLength - EXPORTER_STDERR_TAIL_BYTES)
    })
    child.stdin.on('error', () => { /* the program may not read its request; its exit status says the rest */ })
    child.on('error', (err) => { spawnError = err })
    child.on('close', (code, sig) => {
      clearTimeout(timer)
      if (grace !== undefined) clearTimeout(grace)
      signal?.removeEventListener('abort', onAbort)
      resolve({ code, signal: sig, stdout: Buffer.concat(stdout), stderrTail: stderrTail.toString('utf8').trimEnd(), timedOut, stdoutOverflow, ...(spawnError === undefined ? {} : { spawnError }) })
    })
    child.stdin.end(input)
  })
}

function parseResult (stdout: Buffer, cmd: string): ExporterResult {
  const lines = stdout.toString('utf8').split('\n').map(l => l.trim()).filter(l => l !== '')
  const last = lines[lines.length - 1]
  if (last === undefined) throw new ExecExporterProtocolError(`exporter ${cmd} exited 0 but wrote no result line on stdout`)
  let json: unknown
  try { json = JSON.parse(last) } catch { throw new ExecExporterProtocolError(`exporter ${cmd}: the last stdout line is not JSON: ${JSON.stringify(last.slice(0, 200))}`) }
  const r = ExporterResultSchema.safeParse(json)
  if (!r.success) throw new ExecExporterProtocolError(`exporter ${cmd}: invalid result: ${r.error.issues.slice(0, 3).map(i => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`)
  return r.data
}

export async function exportExec (image: ExportImage, spec: ExecSpec, options: ExportOptions, components: ExporterComponents): Promise<ExportResult> {
  const names = targetNames([], options)
  const dir = await mkdtemp(join(components.tmpDir ?? tmpdir(), scratchPrefix('kiln-exec-export-')))
  try {
    await writeOciLayout(dir, image.store, layoutEntries(image.root, names).map(descriptor => ({ descriptor })))
    const request: ExporterRequest = {
      version: EXPORTER_PROTOCOL_VERSION,
      layout: dir,
      root: image.root,
      tags: names,
      manifests: await singleManifests(image),
      annotations: image.root.annotations ?? {},
      options: spec.options
    }
    options.signal?.throwIfAborted()
    options.onProgress?.({ type: 'exec', event: 'exec', digest: image.root.digest })
    const out = await run(spec, dir, JSON.stringify(request) + '\n', { ...(components.env ?? process.env), KILN_EXPORT_LAYOUT: dir }, options.signal)
    if (out.spawnError !== undefined) throw new ExecExporterFailedError(`cannot run exporter ${spec.cmd}: ${out.spawnError.message}`, out.stderrTail, null)
    options.signal?.throwIfAborted()
    if (out.timedOut) throw new ExecExporterTimeoutError(`exporter ${spec.cmd} ran longer than ${spec.timeoutSeconds ?? EXPORTER_DEFAULT_TIMEOUT_MS / 1000} s and was killed`)
    if (out.stdoutOverflow) throw new ExecExporterProtocolError(`exporter ${spec.cmd} wrote more than ${EXPORTER_MAX_STDOUT_BYTES} bytes on stdout (logs go to stderr) and was killed`)
    if (out.code !== 0) {
      throw new ExecExporterFailedError(`exporter ${spec.cmd} ${out.code === null ? `was killed by ${String(out.signal)}` : `exited with code ${out.code}`}`, out.stderrTail, out.code)
    }
    const result = parseResult(out.stdout, spec.cmd)
    if (!result.ok) throw new ExecExporterFailedError(`exporter ${spec.cmd} failed: ${result.error}`, out.stderrTail, 0)
    return { description: result.location, digest: result.digest ?? image.root.digest }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
