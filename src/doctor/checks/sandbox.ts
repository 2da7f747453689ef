/**
 * Each sandbox driver, as the builder's probe found it (src/builder/sandbox/probe.ts),
 * and the one builds will use. A driver that works but cannot isolate build
 * steps from kiln (proot) is a warning: it builds the operator's own recipes
 * only, never jobs of other peers nor gateway builds (docs/security.md).
 * A driver without root emulation (unshare) is a warning too: recipes that
 * install packages or add users fail under it (docs/building.md, "Root
 * emulation"); the probe loads bwrap's seccomp program for real, so a
 * kernel that refuses it shows as bwrap not working. Owners set inside
 * RUN steps are kept only by bwrap with Debian's fakeroot and a static
 * busybox on the node (docs/building.md, "Ownership"); otherwise images
 * whose RUN steps chown are annotated flattened: a warning.
 */
import { othersRefusal } from '../../builder/sandbox/index.ts'
import type { Check, CheckResult } from '../types.ts'

const ISOLATING_FIX = 'for jobs and gateway builds, enable unprivileged user namespaces (see the userns checks) and install bubblewrap'

export const checkSandboxes: Check = async ({ config, system }) => {
  const probe = await system.probeSandboxes()
  const wanted = config.build.sandbox
  const out: CheckResult[] = probe.drivers.map(d => {
    if (d.ok) {
      const refusal = othersRefusal(d)
      return refusal === undefined
        ? { id: `sandbox.${d.driver}`, title: `sandbox ${d.driver}`, status: 'ok', detail: d.detail }
        : { id: `sandbox.${d.driver}`, title: `sandbox ${d.driver}`, status: 'warn', detail: `${d.detail}: ${refusal}`, fix: `build only recipes you trust with ${d.driver}; ${ISOLATING_FIX}` }
    }
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
  const used = probe.drivers.find(d => d.driver === uses)
  if (uses === undefined || used === undefined) {
    out.push({ id: 'sandbox', title: 'sandbox', status: 'problem', detail: wanted === 'auto' ? 'no sandbox driver works: RUN steps cannot be built on this node' : `build.sandbox is ${wanted}, which does not work here`, fix: wanted === 'auto' ? 'enable user namespaces, or install bubblewrap or proot' : 'set build.sandbox: auto in kiln.yaml, or fix that driver' })
    return out
  }
  out.push(used.features.rootEmulation
    ? { id: 'sandbox.root-emulation', title: 'root emulation', status: 'ok', detail: `the ${uses} driver emulates root: chown, setuid and setgroups succeed in RUN steps (apt-get, dpkg, useradd work unmodified)` }
    : { id: 'sandbox.root-emulation', title: 'root emulation', status: 'warn', detail: `the ${uses} driver has no root emulation: chown, setuid and setgroups to other ids fail in RUN steps, so apt-get, dpkg and useradd fail`, fix: 'install bubblewrap (apt/dnf install bubblewrap) and use build.sandbox: auto or bwrap' })
  const ledger = uses === 'bwrap' ? system.ownershipLedger() : `the ${uses} driver keeps no record of them`
  out.push(ledger === undefined
    ? { id: 'sandbox.owners', title: 'owners set in RUN', status: 'ok', detail: 'chown, useradd -m and dpkg\'s owners in RUN steps are recorded by fakeroot\'s ledger and kept in the layers' }
    : { id: 'sandbox.owners', title: 'owners set in RUN', status: 'warn', detail: `owners set inside RUN steps are not kept (their files are 0:0, the image is annotated org.kiln.permissions=flattened): ${ledger}`, fix: 'install fakeroot and busybox-static (apt-get install fakeroot busybox-static) and use the bwrap driver' })
  const refusal = othersRefusal(used)
  out.push(refusal === undefined
    ? { id: 'sandbox', title: 'sandbox', status: 'ok', detail: `builds will use the ${uses} driver` }
    : {
        id: 'sandbox',
        title: 'sandbox',
        status: 'warn',
        detail: `builds will use the ${uses} driver: ${refusal}. ${wanted === 'auto' ? 'An agent declines jobs of other peers and kiln up refuses gateway builds' : 'kiln agent and kiln up refuse to start unless given --no-jobs (and --no-local-builds)'}`,
        fix: ISOLATING_FIX
      })
  return out
}
