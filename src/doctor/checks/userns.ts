/**
 * User namespaces: the kernel settings that switch them off for ordinary
 * users, and whether one can really be created (the sandbox probe's answer).
 */
import type { Check, CheckResult, SystemAccess } from '../types.ts'

async function sysctl (system: SystemAccess, path: string): Promise<number | undefined> {
  const text = await system.readText(path)
  if (text === undefined) return undefined
  const n = Number(text.trim())
  return Number.isInteger(n) ? n : undefined
}

export const checkUserNamespaces: Check = async ({ system }) => {
  const out: CheckResult[] = []
  const max = await sysctl(system, '/proc/sys/user/max_user_namespaces')
  out.push(max === undefined
    ? { id: 'userns.max', title: 'user.max_user_namespaces', status: 'skip', detail: 'not present on this kernel' }
    : max === 0
      ? { id: 'userns.max', title: 'user.max_user_namespaces', status: 'problem', detail: '0: user namespaces are disabled', fix: 'ask the admins for: sysctl -w user.max_user_namespaces=15000 (and persist it in /etc/sysctl.d/)' }
      : { id: 'userns.max', title: 'user.max_user_namespaces', status: max < 100 ? 'warn' : 'ok', detail: String(max), ...(max < 100 ? { fix: 'each concurrent build step needs a namespace; ask for user.max_user_namespaces of a few thousand' } : {}) })

  const clone = await sysctl(system, '/proc/sys/kernel/unprivileged_userns_clone')
  out.push(clone === undefined
    ? { id: 'userns.clone', title: 'kernel.unprivileged_userns_clone', status: 'skip', detail: 'not present (only Debian/Ubuntu-patched kernels have it)' }
    : clone === 0
      ? { id: 'userns.clone', title: 'kernel.unprivileged_userns_clone', status: 'problem', detail: '0: only root may create user namespaces', fix: 'ask the admins for: sysctl -w kernel.unprivileged_userns_clone=1' }
      : { id: 'userns.clone', title: 'kernel.unprivileged_userns_clone', status: 'ok', detail: String(clone) })

  const probe = await system.probeSandboxes()
  const apparmor = await sysctl(system, '/proc/sys/kernel/apparmor_restrict_unprivileged_userns')
  out.push(apparmor === undefined || apparmor === 0
    ? { id: 'userns.apparmor', title: 'kernel.apparmor_restrict_unprivileged_userns', status: apparmor === undefined ? 'skip' : 'ok', detail: apparmor === undefined ? 'not present (no AppArmor userns restriction)' : '0' }
    : {
        id: 'userns.apparmor',
        title: 'kernel.apparmor_restrict_unprivileged_userns',
        status: probe.userNamespaces.ok ? 'warn' : 'problem',
        detail: `${apparmor}: AppArmor gives unconfined programs' user namespaces no capabilities${probe.userNamespaces.ok ? ' (user namespaces still work here)' : ''}`,
        fix: 'ask the admins for an AppArmor profile allowing userns for unshare/bwrap (see docs/troubleshooting.md), or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0'
      })

  out.push(probe.userNamespaces.ok
    ? { id: 'userns', title: 'user namespaces', status: 'ok', detail: probe.userNamespaces.detail }
    : { id: 'userns', title: 'user namespaces', status: 'problem', detail: probe.userNamespaces.detail, fix: 'builds need unprivileged user namespaces (or proot); see the userns.* checks above and docs/troubleshooting.md#userns' })

  out.push(probe.overlayInUserns.ok
    ? { id: 'overlay', title: 'overlay in a user namespace', status: 'ok', detail: probe.overlayInUserns.detail }
    : { id: 'overlay', title: 'overlay in a user namespace', status: 'warn', detail: probe.overlayInUserns.detail, fix: 'kernel 5.11 or later mounts overlayfs in a user namespace; without it builds copy and scan the root (slower)' })
  return out
}
