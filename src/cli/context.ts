/**
 * What every command gets: the global options resolved into a config, the
 * data dir's store (opened on first use, closed on exit), the node identity,
 * a logger (in the format of --log-format, see ./log-format.ts), and output
 * helpers.
 */
import type { Command } from 'commander'
import type { Logger } from 'pino'
import type { KilnConfig } from '../config/index.ts'
import type { LocalStore } from '../content/index.ts'
import type { Identity } from '../p2p/identity.ts'
import type { Output } from './output.ts'
import { CliError } from './errors.ts'
import { EXIT } from './exit-codes.ts'

export interface GlobalOptions {
  config?: string
  dataDir?: string
  logLevel?: string
  logFormat?: string
}

export interface CliContext {
  config: () => Promise<KilnConfig>
  /** The data dir, made private on first use (src/doctor/data-dir.ts): every command that opens it goes through here. */
  dataDir: () => Promise<string>
  store: () => Promise<LocalStore>
  identity: () => Promise<Identity>
  logger: () => Promise<Logger>
  out: Output
  /** Registers work to run when the command ends (close servers, stores). */
  onClose: (fn: () => Promise<void> | void) => void
  /** Sets kiln's exit status for a command that ends without error (kiln run: the container's). */
  exitCode: (code: number) => void
}

export function createContext (program: Command, out: Output): CliContext & { close: () => Promise<void>, commandExitCode: () => number | undefined } {
  let commandExitCode: number | undefined
  let config: Promise<KilnConfig> | undefined
  let store: Promise<LocalStore> | undefined
  let logger: Promise<Logger> | undefined
  let dataDir: Promise<string> | undefined
  const closers: Array<() => Promise<void> | void> = []

  const getConfig = async (): Promise<KilnConfig> => {
    config ??= (async () => {
      const opts = program.opts<GlobalOptions>()
      const { loadConfig } = await import('../config/index.ts')
      const overrides: { dataDir?: string, logLevel?: string } = {}
      if (opts.dataDir !== undefined) overrides.dataDir = opts.dataDir
      if (opts.logLevel !== undefined) overrides.logLevel = opts.logLevel
      return await loadConfig({ ...(opts.config !== undefined ? { file: opts.config } : {}), overrides })
    })()
    return await config
  }

  const getDataDir = async (): Promise<string> => {
    dataDir ??= (async () => {
      const dir = (await getConfig()).dataDir
      const { describeTooOpen, formatMode, secureDataDir } = await import('../doctor/data-dir.ts')
      const { fixed } = await secureDataDir(dir)
      for (const f of fixed) out.warn(`${describeTooOpen(f)}; made it ${formatMode(f.want)}`)
      return dir
    })()
    return await dataDir
  }

  return {
    out,
    config: getConfig,
    dataDir: getDataDir,
    store: async () => {
      store ??= (async () => {
        const [{ openLocalStore }, { aliasedRefStore }] = await Promise.all([import('../content/index.ts'), import('../oci/ref-aliases.ts')])
        const s = await openLocalStore(await getDataDir())
        closers.push(() => { s.close() })
        // Every command finds `busybox` under `docker.io/library/busybox` too (src/oci/ref-aliases.ts).
        return { ...s, refs: aliasedRefStore(s.refs) }
      })()
      return await store
    },
    identity: async () => {
      const { loadOrCreateIdentity } = await import('../p2p/identity.ts')
      return await loadOrCreateIdentity(await getDataDir())
    },
    logger: async () => {
      logger ??= (async () => {
        const [{ pino }, { logDestination, pickLogFormat }] = await Promise.all([import('pino'), import('./log-format.ts')])
        let format
        try {
          format = pickLogFormat(program.opts<GlobalOptions>().logFormat)
        } catch (err) {
          throw new CliError((err as Error).message, { exitCode: EXIT.usage })
        }
        const level = (await getConfig()).logLevel
        return pino({ level, base: { pid: process.pid } }, logDestination(format, pino.destination(2)))
      })()
      return await logger
    },
    onClose: (fn) => { closers.push(fn) },
    exitCode: (code) => { commandExitCode = code },
    commandExitCode: () => commandExitCode,
    close: async () => {
      for (const fn of closers.splice(0).reverse()) await fn()
    }
  }
}
