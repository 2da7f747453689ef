import { describe, it, expect, afterAll } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, homedir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, defaultDataDir, settingName } from '../../../src/config/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'kiln-config-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })
function file (name: string, text: string): string {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}

describe('config', () => {
  it('has defaults that need no file', async () => {
    const c = await loadConfig({ env: {} })
    expect(c.dataDir).toBe(join(homedir(), '.local', 'share', 'kiln'))
    expect(c.gateway.listen).toBe('127.0.0.1:5000')
    expect(c.node.mdns).toBe(true)
    expect(c.build.sandbox).toBe('auto')
  })

  it('puts the data dir under XDG_DATA_HOME when set', () => {
    expect(defaultDataDir({ XDG_DATA_HOME: '/x/data' })).toBe('/x/data/kiln')
  })

  it('layers file < env < flags', async () => {
    const f = file('layers.yaml', 'dataDir: /from/file\nlogLevel: warn\nagent:\n  institution: uni-a\n')
    expect((await loadConfig({ file: f, env: {} })).dataDir).toBe('/from/file')
    expect((await loadConfig({ file: f, env: { KILN_DATA_DIR: '/from/env' } })).dataDir).toBe('/from/env')
    const c = await loadConfig({ file: f, env: { KILN_DATA_DIR: '/from/env' }, overrides: { dataDir: '/from/flag' } })
    expect(c.dataDir).toBe('/from/flag')
    expect(c.logLevel).toBe('warn')
    expect(c.agent.institution).toBe('uni-a')
  })

  it('takes the sandbox and SOURCE_DATE_EPOCH from the environment over the file, and says which variable set them', async () => {
    const f = file('build.yaml', 'build:\n  sandbox: proot\n  sourceDateEpoch: 5\n  stepTimeout: 60\n')
    const fromFile = await loadConfig({ file: f, env: {} })
    expect(fromFile.build).toMatchObject({ sandbox: 'proot', sourceDateEpoch: 5, stepTimeout: 60 })
    expect(settingName(fromFile, 'build.sandbox')).toBe('build.sandbox')
    const fromEnv = await loadConfig({ file: f, env: { KILN_SANDBOX: 'bwrap', SOURCE_DATE_EPOCH: '1700000000' } })
    expect(fromEnv.build).toMatchObject({ sandbox: 'bwrap', sourceDateEpoch: 1_700_000_000, stepTimeout: 60 })
    expect(settingName(fromEnv, 'build.sandbox')).toBe('KILN_SANDBOX')
    expect(settingName(fromEnv, 'build.sourceDateEpoch')).toBe('SOURCE_DATE_EPOCH')
    // Not a whole number of seconds: ignored, as before it was read here.
    expect((await loadConfig({ file: f, env: { SOURCE_DATE_EPOCH: 'yesterday' } })).build.sourceDateEpoch).toBe(5)
    expect((await loadConfig({ env: {} })).build.sourceDateEpoch).toBeUndefined()
    await expect(loadConfig({ env: { KILN_SANDBOX: 'chroot' } })).rejects.toThrow(/build\.sandbox: expected one of "auto", .*, got "chroot"/)
  })

  it('reads the file named by KILN_CONFIG', async () => {
    const f = file('env.yaml', 'gateway:\n  listen: 127.0.0.1:6000\n')
    expect((await loadConfig({ env: { KILN_CONFIG: f } })).gateway.listen).toBe('127.0.0.1:6000')
  })

  it('names the key, the value and what was expected for a bad value', async () => {
    const f = file('bad.yaml', 'gateway:\n  listen: 5000\n')
    await expect(loadConfig({ file: f, env: {} })).rejects.toThrow(/bad\.yaml: gateway\.listen: expected a string, got 5000 \(a number\)/)
  })

  it('refuses unknown keys, naming them', async () => {
    const f = file('typo.yaml', 'agent:\n  maxConcurentBuilds: 2\n')
    await expect(loadConfig({ file: f, env: {} })).rejects.toMatchObject({ name: 'ConfigError', message: expect.stringMatching(/unknown key agent\.maxConcurentBuilds/) })
  })

  it('reports YAML syntax errors and unreadable files', async () => {
    await expect(loadConfig({ file: file('syntax.yaml', 'a: [1, 2\n'), env: {} })).rejects.toThrow(/invalid YAML/)
    await expect(loadConfig({ file: join(dir, 'absent.yaml'), env: {} })).rejects.toThrow(/cannot read config file/)
    await expect(loadConfig({ file: file('list.yaml', '- a\n'), env: {} })).rejects.toThrow(/expected a mapping/)
  })

  it('validates enums with the allowed values', async () => {
    await expect(loadConfig({ env: { KILN_LOG_LEVEL: 'loud' } })).rejects.toThrow(/logLevel: expected one of "trace", .*, got "loud"/)
  })
})
