/**
 * Steps that only edit the image config (ENV, WORKDIR, USER, LABEL,
 * ENTRYPOINT, CMD, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK), and the
 * entrypoint an Apptainer image gets.
 */
import { posix } from 'node:path'
import type { Step } from '../recipe/ir.ts'
import type { Config } from './stage.ts'

/** `KEY=VALUE` lines as a record (a line without `=` is dropped). */
export function envMap (env: readonly string[] | null | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const kv of env ?? []) { const i = kv.indexOf('='); if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1) }
  return out
}

function setEnv (config: Config, key: string, value: string): void {
  const env = (config.Env ?? []).filter(kv => !kv.startsWith(`${key}=`))
  env.push(`${key}=${value}`)
  config.Env = env
}

const NS_PER_UNIT: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }

/** A Go duration as HEALTHCHECK flags write it (`1m30s`, `500ms`) in nanoseconds, as Docker's config stores it. */
export function durationNs (text: string): number {
  let ns = 0
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ns += Number(n) * (NS_PER_UNIT[unit as string] ?? 0)
  return Math.round(ns)
}

/** Docker's Healthcheck config: the test, and the durations (nanoseconds) and retries the flags gave. */
function healthcheck (step: Extract<Step, { op: 'healthcheck' }>): Record<string, unknown> {
  const out: Record<string, unknown> = { Test: step.test }
  if (step.interval !== undefined) out.Interval = durationNs(step.interval)
  if (step.timeout !== undefined) out.Timeout = durationNs(step.timeout)
  if (step.startPeriod !== undefined) out.StartPeriod = durationNs(step.startPeriod)
  if (step.startInterval !== undefined) out.StartInterval = durationNs(step.startInterval)
  if (step.retries !== undefined) out.Retries = step.retries
  return out
}

export function applyConfigStep (config: Config, step: Step): void {
  switch (step.op) {
    case 'env': for (const { key, value } of step.vars) setEnv(config, key, value); break
    case 'workdir': config.WorkingDir = posix.resolve(config.WorkingDir ?? '/', step.path); break
    case 'user': config.User = step.user; break
    case 'label': config.Labels = { ...(config.Labels ?? {}), ...Object.fromEntries(step.labels.map(l => [l.key, l.value])) }; break
    case 'entrypoint': config.Entrypoint = step.argv; config.Cmd = null; break
    case 'cmd': config.Cmd = step.argv; break
    case 'expose': config.ExposedPorts = { ...(config.ExposedPorts ?? {}), ...Object.fromEntries(step.ports.map(p => [p.includes('/') ? p : `${p}/tcp`, {}])) }; break
    case 'volume': config.Volumes = { ...(config.Volumes ?? {}), ...Object.fromEntries(step.paths.map(p => [p, {}])) }; break
    case 'stopsignal': config.StopSignal = step.signal; break
    case 'healthcheck': (config as Record<string, unknown>).Healthcheck = healthcheck(step); break
    case 'onbuild': config.OnBuild = [...(config.OnBuild ?? []), step.trigger]; break
    case 'arg': case 'shell': break
    default: break
  }
}

/** Apptainer images run their runscript after sourcing /.singularity.d/env/*.sh (`sourceEnvironment`, src/recipe's), as `apptainer run` does. */
export function apptainerEntrypoint (config: Config, sourceEnvironment: string): void {
  if (config.Entrypoint != null && config.Entrypoint.length > 0) return
  config.Entrypoint = ['/bin/sh', '-c', `${sourceEnvironment}; if [ -x /.singularity.d/runscript ]; then exec /.singularity.d/runscript "$@"; fi; exec "$@"`, 'runscript']
  config.Cmd = config.Cmd ?? []
}
