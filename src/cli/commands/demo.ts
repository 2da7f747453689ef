import type { Command } from 'commander'
import type { CliContext } from '../context.ts'

export function register (program: Command, ctx: CliContext): void {
  program.command('demo')
    .description('a guided tour on this machine: build an image rootlessly, rebuild from cache, serve it, pull it back')
    .option('--keep', 'keep the demo data dir and files afterwards (their path is printed)')
    .option('--port <port>', 'gateway port on 127.0.0.1 (default: a free one)')
    .addHelpText('after', `
Every step is a kiln command, printed before it runs, in a throw-away data
dir: nothing touches your own store. Uses Debian's busybox-static for the
base image when installed (apt-get install busybox-static), and skopeo to
pull through the gateway when installed (kiln pulls otherwise).

Example:
  npm run demo           (the same as: kiln demo)`)
    .action(async (opts: { keep?: boolean, port?: string }) => {
      const { runDemo } = await import('../demo.ts')
      await runDemo({ keep: opts.keep === true, ...(opts.port !== undefined ? { port: Number(opts.port) } : {}), out: ctx.out })
    })
}
