/**
 * How a step gets its environment. Host programs (bwrap, unshare, proot and
 * the shell scripts around them) run with HOST_ENV only: a dynamically
 * linked host program started with the step's environment would honour a
 * recipe's `ENV LD_PRELOAD=...` and load, outside the sandbox, a library
 * the recipe left at a path it can predict (a step snapshot, /dev/shm).
 * The step's variables are therefore set inside the root, as the last
 * thing before the step's program starts: by bwrap's own --clearenv and
 * --setenv, or by the host's static busybox `env -i` (no dynamic loader,
 * so no LD_* to honour) run in the root.
 */
import { SandboxError } from '../errors.ts'

function assignments (env: Record<string, string>): Array<[string, string]> {
  return Object.entries(env).map(([name, value]) => {
    if (name === '' || name.includes('=') || name.includes('\0') || value.includes('\0')) {
      throw new SandboxError(`environment variable ${JSON.stringify(name)} cannot be passed to a step (empty name, '=' or NUL)`)
    }
    return [name, value]
  })
}

/** bwrap arguments that give the step exactly `env`. */
export function bwrapEnvArgs (env: Record<string, string>): string[] {
  return ['--clearenv', ...assignments(env).flatMap(([name, value]) => ['--setenv', name, value])]
}

/**
 * The argv that runs `argv` with exactly `env`, through a static busybox
 * at `busybox` (a path inside the root). `env` reads every leading NAME=VALUE
 * as an assignment, so a program whose name holds '=' cannot be run this way.
 */
export function envArgv (busybox: string, env: Record<string, string>, argv: readonly string[]): string[] {
  const program = argv[0]
  if (program === undefined) throw new SandboxError('a step needs a command')
  if (program.includes('=')) throw new SandboxError(`the step's command ${JSON.stringify(program)} contains '=', which this driver cannot run`)
  return [busybox, 'env', '-i', ...assignments(env).map(([name, value]) => `${name}=${value}`), ...argv]
}
