/**
 * The process `kiln run` starts (src/builder/container.ts): Entrypoint and
 * Cmd as podman combines them with the command and --entrypoint, the
 * environment's precedence, and users looked up in the image's own
 * /etc/passwd and /etc/group, never through a link out of the root.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ContainerSetupError, containerProcess, resolveUser } from '../../../src/builder/container.ts'
import type { ImageConfig } from '../../../src/oci/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'kiln-container-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

function root (name: string, passwd: string | { link: string }, group = ''): string {
  const r = join(dir, name)
  mkdirSync(join(r, 'etc'), { recursive: true })
  if (typeof passwd === 'string') writeFileSync(join(r, 'etc', 'passwd'), passwd)
  else symlinkSync(passwd.link, join(r, 'etc', 'passwd'))
  writeFileSync(join(r, 'etc', 'group'), group)
  return r
}

const config = (c: NonNullable<ImageConfig['config']>): ImageConfig => ({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: c })

describe('containerProcess', () => {
  const rootfs = root('plain', 'root:x:0:0:root:/root:/bin/sh\nada:x:1000:1000::/home/ada:/bin/sh\n', 'root:x:0:\nlab:x:77:\n')

  it('runs Entrypoint + Cmd, a command replacing Cmd, and --entrypoint dropping Cmd', async () => {
    const c = config({ Entrypoint: ['/entry'], Cmd: ['--default'] })
    expect((await containerProcess(c, rootfs, {})).argv).toEqual(['/entry', '--default'])
    expect((await containerProcess(c, rootfs, { command: ['x', 'y'] })).argv).toEqual(['/entry', 'x', 'y'])
    expect((await containerProcess(c, rootfs, { entrypoint: ['/other'] })).argv).toEqual(['/other'])
    expect((await containerProcess(c, rootfs, { entrypoint: [], command: ['sh'] })).argv).toEqual(['sh'])
    await expect(containerProcess(config({}), rootfs, {})).rejects.toThrow(ContainerSetupError)
  })

  it('layers the environment: defaults, HOME of the user, the image\'s Env, then -e in order', async () => {
    process.env.KILN_TEST_FROM_HOST = 'host value'
    const p = await containerProcess(config({ Cmd: ['true'], Env: ['PATH=/opt/bin', 'A=image', 'B=image'], User: 'ada' }), rootfs, { env: ['A=flag', 'KILN_TEST_FROM_HOST', 'KILN_TEST_UNSET_ANYWHERE', 'B=1', 'B=2'] })
    delete process.env.KILN_TEST_FROM_HOST
    expect(p.env).toEqual({ PATH: '/opt/bin', HOME: '/home/ada', A: 'flag', B: '2', KILN_TEST_FROM_HOST: 'host value' })
    expect(p.user).toEqual({ uid: 1000, gid: 1000 })
    expect(p.cwd).toBe('/')
    await expect(containerProcess(config({ Cmd: ['true'] }), rootfs, { env: ['=x'] })).rejects.toThrow(/NAME=VALUE/)
    await expect(containerProcess(config({ Cmd: ['true'] }), rootfs, { workingDir: 'rel' })).rejects.toThrow(/absolute/)
  })
})

describe('resolveUser', () => {
  it('takes names and numbers as podman does: a listed uid its group and home, an unlisted one group 0 and /', async () => {
    const rootfs = root('users', 'root:x:0:0:root:/root:/bin/sh\nada:x:1000:1001::/home/ada:/bin/sh\n', 'root:x:0:\nlab:x:77:\n')
    expect(await resolveUser(rootfs, 'ada')).toEqual({ uid: 1000, gid: 1001, home: '/home/ada' })
    expect(await resolveUser(rootfs, '1000')).toEqual({ uid: 1000, gid: 1001, home: '/home/ada' })
    expect(await resolveUser(rootfs, '4242')).toEqual({ uid: 4242, gid: 0, home: '/' })
    expect(await resolveUser(rootfs, 'ada:lab')).toEqual({ uid: 1000, gid: 77, home: '/home/ada' })
    expect(await resolveUser(rootfs, '5:9')).toEqual({ uid: 5, gid: 9, home: '/' })
    await expect(resolveUser(rootfs, 'nobody')).rejects.toThrow(/no user nobody/)
    await expect(resolveUser(rootfs, 'ada:staff')).rejects.toThrow(/no group staff/)
    await expect(resolveUser(rootfs, 'ada:')).rejects.toThrow(/USER\[:GROUP\]/)
  })

  it('never reads a passwd file outside the root through a link', async () => {
    const outside = join(dir, 'host-passwd')
    writeFileSync(outside, 'hostuser:x:4321:4321::/home/hostuser:/bin/sh\n')
    const rootfs = root('escape', { link: outside })
    await expect(resolveUser(rootfs, 'hostuser')).rejects.toThrow(/no user hostuser/)
    const relative = root('escape-rel', { link: '../../host-passwd' })
    await expect(resolveUser(relative, 'hostuser')).rejects.toThrow(/no user hostuser/)
  })
})
