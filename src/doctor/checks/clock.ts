/**
 * Clock skew against the HTTP Date header of a gateway (`--gateway-url`)
 * or of `node.timeReference` (any HTTP server of the site with a good clock). Signed records carry
 * issuedAt/expiresAt: a clock minutes off makes peers refuse this node's
 * jobs and results, or this node refuse theirs.
 */
import { CLOCK_PROBLEM_MS, CLOCK_WARN_MS, CONNECT_TIMEOUT_MS } from '../constants.ts'
import type { Check } from '../types.ts'

export const checkClock: Check = async ({ config, system, gatewayUrl: given }) => {
  const gatewayUrl = given ?? config.node.timeReference
  if (gatewayUrl === undefined) return [{ id: 'clock', title: 'clock skew', status: 'skip', detail: 'nothing to compare with: set node.timeReference in kiln.yaml (a gateway\'s http://HOST:PORT) or pass --gateway-url' }]
  const url = new URL('/v2/', gatewayUrl).toString()
  const before = system.now()
  let date: Date | undefined
  try {
    date = await system.httpDate(url, CONNECT_TIMEOUT_MS)
  } catch (err) {
    return [{ id: 'clock', title: 'clock skew', status: 'warn', detail: `cannot reach ${url}: ${(err as Error).message}`, fix: `check ${given !== undefined ? '--gateway-url' : 'node.timeReference'}; the clock was not compared` }]
  }
  if (date === undefined || Number.isNaN(date.getTime())) return [{ id: 'clock', title: 'clock skew', status: 'skip', detail: `${url} sent no Date header` }]
  const after = system.now()
  // The Date header has one-second resolution and was set somewhere within the round trip.
  const local = (before + after) / 2
  const skew = Math.abs(local - date.getTime())
  const tolerance = 1000 + (after - before) / 2
  const detail = `${skew <= tolerance ? 'within' : `${Math.round(skew / 1000)} s off`} ${skew <= tolerance ? `${Math.round(tolerance)} ms of` : 'from'} ${new URL(gatewayUrl).host}`
  const fix = 'run time sync (chronyd or systemd-timesyncd) on this node; ask the admins if it is a compute node'
  if (skew - tolerance > CLOCK_PROBLEM_MS) return [{ id: 'clock', title: 'clock skew', status: 'problem', detail, fix }]
  if (skew - tolerance > CLOCK_WARN_MS) return [{ id: 'clock', title: 'clock skew', status: 'warn', detail, fix }]
  return [{ id: 'clock', title: 'clock skew', status: 'ok', detail }]
}
