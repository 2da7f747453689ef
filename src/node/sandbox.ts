/**
 * The sandbox a node builds for others with (jobs of other peers, gateway
 * builds): build.sandbox (or KILN_SANDBOX, src/config), probed at start,
 * and whether it may run their recipes (docs/security.md).
 */
import type { KilnConfig } from '../config/index.ts'
import type { Sandbox } from '../builder/index.ts'
import { NodeSettingError } from './errors.ts'

export interface NodeSandbox {
  /** The sandbox builds use; absent when none works here (builds then fail at their first RUN). */
  sandbox?: Sandbox
  /** Why builds for others (jobs of other peers, gateway builds) are refused on this node, when they are. */
  othersRefused?: string
}

/**
 * `offFlags` are the flags that would stop this node building for others
 * (--no-jobs, --no-local-builds); none: nothing is probed. A driver named
 * explicitly that cannot isolate steps (proot) is then a NodeSettingError
 * that says what to do; one picked automatically, because it is the only
 * one that works here, builds this node's own recipes and refuses others'.
 */
export async function sandboxForOthers (config: KilnConfig, offFlags: string[]): Promise<NodeSandbox> {
  if (offFlags.length === 0) return {}
  const [{ settingName }, { createSandbox, othersRefusal }, { join }] = await Promise.all([
    import('../config/index.ts'), import('../builder/sandbox/index.ts'), import('node:path')
  ])
  const setting = settingName(config, 'build.sandbox')
  const driver = config.build.sandbox === 'auto' ? undefined : config.build.sandbox
  let sandbox: Sandbox
  try {
    sandbox = await createSandbox({ ...(driver !== undefined ? { driver } : {}), probeCacheDir: join(config.dataDir, 'build') })
  } catch (err) {
    if (driver === undefined) return {}
    throw new NodeSettingError(`${setting} is ${driver}: ${(err as Error).message}`, { cause: err, hint: 'kiln doctor shows which sandbox drivers work here' })
  }
  const othersRefused = othersRefusal(sandbox)
  if (othersRefused !== undefined && driver !== undefined) {
    throw new NodeSettingError(`${setting} is ${driver}: ${othersRefused}`, {
      hint: `set ${setting} to auto, bwrap or unshare, or start with ${offFlags.join(' ')} to build for nobody but this node's kiln build`
    })
  }
  return { sandbox, ...(othersRefused !== undefined ? { othersRefused } : {}) }
}
