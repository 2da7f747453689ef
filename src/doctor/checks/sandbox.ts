/** Each sandbox driver, as the builder's probe found it (src/build/sandbox/probe.ts), and the one builds will use. */
import type { Check, CheckResult } from '../types.ts'

export const checkSandboxes: Check = async ({ config, system }) => {
  const probe = await system.probeSandboxes()
  const wanted = config.build.sandbox
  const out: CheckResult[] = probe.drivers.map(d => {
    if (d.ok) return { id: `sandbox.${d.driver}`, title: `sandbox ${d.driver}`, status: 'ok', detail: d.detail }
    const required = wanted === d.driver
    return {
      id: `sandbox.${d.driver}`,
      title: `sandbox ${d.driver}`,
      status: required || probe.selected === undefined ? 'problem' : 'warn',
      detail: `${d.detail}${required ? ' (build.sandbox asks for this driver)' : ''}`,
      fix: d.driver === 'proot' ? 'install proot (a static build works from your home directory), or rely on bwrap/unshare' : d.driver === 'bwrap' ? 'install bubblewrap (apt/dnf install bubblewrap), or rely on unshare' : 'needs user namespaces: see the userns checks'
    }
  })
  const uses = wanted === 'auto' ? probe.selected : (probe.drivers.find(d => d.driver === wanted)?.ok === true ? wanted : undefined)
  out.push(uses === undefined
    ? { id: 'sandbox', title: 'sandbox', status: 'problem', detail: wanted === 'auto' ? 'no sandbox driver works: RUN steps cannot be built on this node' : `build.sandbox is ${wanted}, which does not work here`, fix: wanted === 'auto' ? 'enable user namespaces, or install bubblewrap or proot' : 'set build.sandbox: auto in kiln.yaml, or fix that driver' }
    : { id: 'sandbox', title: 'sandbox', status: 'ok', detail: `builds will use the ${uses} driver` })
  return out
}
