import type { Command } from 'commander'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'

/** Checks whose result the sandbox lines below already print. */
const SANDBOX_CHECKS = /^(userns|overlay|sandbox(\..*)?)$/

export function register (program: Command, ctx: CliContext): void {
  program.command('doctor')
    .description('check what this node can do: user namespaces, overlay in a user namespace, each sandbox driver, disk, data dir privacy, network, clock, trust, emulators')
    .option('--json', 'print JSON: { userNamespaces, overlayInUserns, drivers: [{ driver, ok, features, detail }], selected, checks: [{ id, title, status, detail, fix }], problems, warnings }')
    .option('--gateway-url <url>', 'compare this node\'s clock with a kiln gateway (http://HOST:PORT); default node.timeReference')
    .addHelpText('after', '\nExits 1 when a check finds a problem (warnings alone exit 0). Each check is explained in docs/troubleshooting.md.\n\nExample:\n  kiln doctor --json | jq -r .selected')
    .action(async (opts: { json?: boolean, gatewayUrl?: string }) => {
      const { probeSandboxes } = await import('../../builder/index.ts')
      const { createDoctor } = await import('../../doctor/index.ts')
      const probe = await probeSandboxes()
      const report = await createDoctor({ config: await ctx.config(), ...(opts.gatewayUrl !== undefined ? { gatewayUrl: opts.gatewayUrl } : {}) }).run()
      const failed = (): CliError => new CliError(`${report.problems} problem(s) found`, { hint: 'each problem line says how to fix it; see docs/troubleshooting.md' })
      if (opts.json === true) {
        ctx.out.json({ ...probe, ...report })
        if (report.problems > 0) throw failed()
        return
      }
      const mark = (ok: boolean): string => ok ? 'ok     ' : 'problem'
      const print = (c: { status: string, title: string, detail: string, fix?: string }): void => {
        ctx.out.line(`${c.status.padEnd(7)}  ${c.title}: ${c.detail}`)
        if (c.fix !== undefined && c.status !== 'ok') ctx.out.line(`         fix: ${c.fix}`)
      }
      ctx.out.line(`${mark(probe.userNamespaces.ok)}  user namespaces: ${probe.userNamespaces.detail}`)
      ctx.out.line(`${mark(probe.overlayInUserns.ok)}  overlay in a user namespace: ${probe.overlayInUserns.detail}`)
      // A driver that works but cannot isolate steps is a warning, with what that means: the check says so.
      for (const d of probe.drivers) {
        const check = report.checks.find(c => c.id === `sandbox.${d.driver}`)
        if (d.ok && check?.status === 'warn') print(check)
        else ctx.out.line(`${mark(d.ok)}  sandbox ${d.driver}: ${d.detail}`)
      }
      const summary = report.checks.find(c => c.id === 'sandbox')
      if (summary?.status === 'warn') print(summary)
      else ctx.out.line(probe.selected === undefined ? 'no sandbox driver works: RUN steps cannot be built on this node' : `builds will use the ${probe.selected} driver`)
      for (const c of report.checks) if (!SANDBOX_CHECKS.test(c.id)) print(c)
      ctx.out.line(`${report.problems} problem(s), ${report.warnings} warning(s)`)
      if (report.problems > 0) throw failed()
    })
}
