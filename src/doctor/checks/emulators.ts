/**
 * Emulators: binfmt_misc entries that let this node run foreign-architecture
 * binaries (qemu-user), so it can build for platforms other than its own.
 */
import { BINFMT_DIR } from '../constants.ts'
import type { Check, CheckResult } from '../types.ts'

/** Node's process.arch to the OCI architecture. */
const OCI_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', arm: 'arm', ia32: '386' }
/** OCI architecture to the names qemu and binfmt entries use. */
const QEMU_ARCH: Record<string, string> = { amd64: 'x86_64', arm64: 'aarch64', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', arm: 'arm', 386: 'i386' }

interface Entry { name: string, enabled: boolean, interpreter: string, fixBinary: boolean }

function parseEntry (name: string, text: string): Entry {
  const interpreter = /^interpreter (.+)$/m.exec(text)?.[1] ?? ''
  const flags = /^flags: ?(\S*)$/m.exec(text)?.[1] ?? ''
  return { name, enabled: /^enabled$/m.test(text), interpreter, fixBinary: flags.includes('F') }
}

export const checkEmulators: Check = async ({ config, system }) => {
  const names = (await system.readdir(BINFMT_DIR))?.filter(n => n !== 'register' && n !== 'status')
  const entries: Entry[] = []
  for (const n of names ?? []) {
    const text = await system.readText(`${BINFMT_DIR}/${n}`)
    if (text !== undefined) entries.push(parseEntry(n, text))
  }
  const usable = entries.filter(e => e.enabled && e.fixBinary)
  const native = OCI_ARCH[system.arch] ?? system.arch
  const foreign = config.agent.platforms.map(p => p.split('/')[1] as string).filter(a => a !== native)
  const missing = foreign.filter(a => !usable.some(e => e.name.includes(QEMU_ARCH[a] ?? a)))
  const out: CheckResult[] = []
  const list = entries.map(e => `${e.name}${e.enabled ? '' : ' (disabled)'}${e.fixBinary ? '' : ' (no F flag)'}`).join(', ')
  if (missing.length > 0) {
    out.push({ id: 'emulators', title: 'emulators', status: 'problem', detail: `agent.platforms asks for ${missing.join(', ')} but no usable binfmt_misc emulator is registered${list === '' ? '' : ` (found: ${list})`}`, fix: 'ask the admins to install qemu-user-static + binfmt-support (entries with the F flag, so they work inside a user namespace), or drop those platforms' })
  } else if (names === undefined) {
    out.push({ id: 'emulators', title: 'emulators', status: 'skip', detail: `${BINFMT_DIR} is not mounted: builds for ${native} only` })
  } else if (entries.length === 0) {
    out.push({ id: 'emulators', title: 'emulators', status: 'skip', detail: `no binfmt_misc entries: builds for ${native} only` })
  } else {
    const noF = entries.filter(e => e.enabled && !e.fixBinary)
    out.push(noF.length > 0
      ? { id: 'emulators', title: 'emulators', status: 'warn', detail: `${list}: entries without the F flag do not work inside a build's user namespace`, fix: 'register the emulators with the F (fix binary) flag, as qemu-user-static packages do' }
      : { id: 'emulators', title: 'emulators', status: 'ok', detail: list })
  }
  return out
}
