import type { Command } from 'commander'
import type { CliContext } from '../context.ts'

export function register (program: Command, ctx: CliContext): void {
  program.command('demo')
    .description('a guided tour on this machine: a farm of three agents builds a job only one of them can take; the result is pulled peer to peer and through the gateway, then run')
    .option('--keep', 'keep the demo\'s work dir (its nodes\' data dirs and logs) afterwards; its path is printed')
    .option('--port <port>', 'gateway port on 127.0.0.1 (default: a free one)')
    .addHelpText('after', `
Every step is a kiln command, printed before it runs as you would type it in
the demo's work dir, a temp dir removed at the end (also on Ctrl-C): nothing
touches your own store. Three agents listen on loopback only, with mDNS off:
alpha (kiln up: an agent and the gateway), beta, and gamma, whose kiln.yaml
advertises gpu=demo. A requester node submits a job with --require gpu:
alpha and beta decline it, gamma offers, is awarded it and builds it while
its log streams back. Another node pulls the result peer to peer (kiln
pull), skopeo pulls it through alpha's gateway, the digests are compared,
and the image's command runs in the sandbox the builder uses.
Uses Debian's busybox-static for a base image when installed (apt-get
install busybox-static), else the job is FROM scratch + COPY and needs no
sandbox; uses skopeo when installed, else plain HTTP. Takes under 2 minutes
on an idle 2-core machine.

Example:
  npm run demo           (the same as: kiln demo)`)
    .action(async (opts: { keep?: boolean, port?: string }) => {
      const { runDemo } = await import('../demo.ts')
      await runDemo({ keep: opts.keep === true, ...(opts.port !== undefined ? { port: Number(opts.port) } : {}), out: ctx.out })
    })
}
