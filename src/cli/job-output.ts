/**
 * How `kiln submit` and `kiln jobs resume` show a job: its events as lines
 * for people, its summary as lines and JSON, and the requester's errors
 * that need more words than the table of ./error-exits.ts gives.
 */
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'
import { formatDuration } from './output.ts'
import { NoOffersError } from '../requester/errors.ts'
import type { JobEvent, StoredJob, SubmitResult } from '../requester/index.ts'
import { isErrorOf } from '../util/error-class.ts'

/** Prints job events for people: log lines prefixed with their platform, and what happens to each platform. */
export function eventPrinter (write: (line: string) => void): (e: JobEvent) => void {
  const short = (peer: string): string => `${peer.slice(0, 8)}…${peer.slice(-6)}`
  const states = new Map<string, string>()
  return (e) => {
    switch (e.kind) {
      case 'published': write(`job ${e.jobId} published`); break
      case 'offer': write(`[${e.platform}] offer from ${short(e.builder)} (queue ${e.queue})`); break
      case 'refused': write(`[${e.platform}] ${e.of ?? 'offer'} from ${short(e.builder)} refused: ${e.reason}`); break
      case 'decline': write(`[${e.platform}] ${short(e.builder)} declined: ${e.reason}`); break
      case 'award': write(`[${e.platform}] awarded to ${e.builder}`); break
      case 'lost': write(`[${e.platform}] ${short(e.builder)} ${e.reason ?? 'went silent or away'}; the platform is awarded again`); break
      case 'republished': write(`[${e.platform}] no offer left: the job is published again`); break
      case 'progress':
        if (states.get(e.platform) !== e.state) { states.set(e.platform, e.state); write(`[${e.platform}] ${e.state}`) }
        break
      case 'log': for (const line of e.lines) write(`[${e.platform}] ${line}`); break
      case 'fetching': write(`[${e.platform}] fetching ${e.digest} from ${short(e.builder)}`); break
      case 'result': write(`[${e.platform}] verified ${e.digest}`); break
      case 'failed': write(`[${e.platform}] failed: ${e.error}`); break
    }
  }
}

/** The summary of a finished job, as JSON and as lines. */
export function summarize (result: SubmitResult, stored: StoredJob | undefined, image: { digest: string }, extra: { tags: string[], output?: string, startedAt: number }): { json: Record<string, unknown>, lines: string[] } {
  const platforms = result.platforms.map(p => {
    const s = stored?.platforms.find(x => x.platform === p.platform)
    return {
      platform: p.platform,
      digest: p.digest,
      builders: p.builders,
      sandbox: p.provenance.sandbox ?? null,
      cachedSteps: s?.cachedSteps ?? null,
      steps: s?.steps ?? null,
      buildMs: p.provenance.finishedAt - p.provenance.startedAt
    }
  })
  const json = {
    jobId: result.jobId,
    digest: image.digest,
    index: result.index?.digest ?? null,
    platforms,
    tags: extra.tags,
    output: extra.output ?? null,
    durationMs: Date.now() - extra.startedAt
  }
  const lines = [`job ${result.jobId} succeeded in ${((Date.now() - extra.startedAt) / 1000).toFixed(1)} s`]
  for (const p of platforms) {
    lines.push(`  ${p.platform.padEnd(14)} ${p.digest}`)
    lines.push(`  ${''.padEnd(14)} built by ${p.builders.join(', ')} in ${(p.buildMs / 1000).toFixed(1)} s${p.steps !== null ? `, ${p.cachedSteps ?? 0}/${p.steps} steps cached` : ''}${p.sandbox !== null ? `, sandbox ${p.sandbox}` : ''}`)
  }
  if (result.index !== undefined) lines.push(`  index          ${result.index.digest}`)
  for (const t of extra.tags) lines.push(`  tagged ${t}`)
  if (extra.output !== undefined) lines.push(`  exported to ${extra.output}`)
  return { json, lines }
}

/** The requester's errors with more to say than the table of error-exits.ts: a timeout, and why nobody offered. */
export function jobError (err: unknown, timedOut: boolean, timeoutMs?: number): unknown {
  if (!(err instanceof Error) || err instanceof CliError) return err
  if (timedOut) return new CliError(`the job did not finish within ${formatDuration(timeoutMs ?? 0)}; it was cancelled`, { exitCode: EXIT.network, cause: err })
  const noOffers = isErrorOf(err, NoOffersError) ? err : undefined
  if (noOffers !== undefined && noOffers.declined.length > 0) {
    return new CliError(err.message, { exitCode: EXIT.network, cause: err, hint: 'the agents that build it declined (reasons above); if they do not trust you as a requester, their site must trust your institution\'s root: kiln trust add-root ROOT.pub.yaml --roles requester (docs/federation.md)' })
  }
  if (noOffers !== undefined && noOffers.refused.length > 0) {
    return new CliError(err.message, { exitCode: EXIT.network, cause: err, hint: 'your trust policy refused every offer (reasons above). An agent that presented no certificate needs one: its site issues it (kiln trust issue --role builder PEER) and the agent stores it (kiln trust add-cert FILE; a running agent presents it at its next offer, no restart). An agent certified by a root you do not trust: trust that root for the builder role (kiln trust add-root FILE --roles builder)' })
  }
  return err
}
