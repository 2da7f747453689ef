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
    case 'healthcheck': (config as Record<string, unknown>).Healthcheck = { Test: step.test }; break
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
