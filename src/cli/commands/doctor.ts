import type { Command } from 'commander'
import type { CliContext } from '../context.ts'

export function register (program: Command, ctx: CliContext): void {
  program.command('doctor')
    .description('check what this node can do: user namespaces, overlay in a user namespace, each sandbox driver')
    .option('--json', 'print JSON: { userNamespaces, overlayInUserns, drivers: [{ driver, ok, features, detail }], selected }')
    .addHelpText('after', '\nExample:\n  kiln doctor --json | jq -r .selected')
    .action(async (opts: { json?: boolean }) => {
      const { probeSandboxes } = await import('../../build/index.ts')
      const probe = await probeSandboxes()
      if (opts.json === true) { ctx.out.json(probe); return }
      const mark = (ok: boolean): string => ok ? 'ok     ' : 'problem'
      ctx.out.line(`${mark(probe.userNamespaces.ok)}  user namespaces: ${probe.userNamespaces.detail}`)
      ctx.out.line(`${mark(probe.overlayInUserns.ok)}  overlay in a user namespace: ${probe.overlayInUserns.detail}`)
      for (const d of probe.drivers) ctx.out.line(`${mark(d.ok)}  sandbox ${d.driver}: ${d.detail}`)
      ctx.out.line(probe.selected === undefined ? 'no sandbox driver works: RUN steps cannot be built on this node' : `builds will use the ${probe.selected} driver`)
    })
}
