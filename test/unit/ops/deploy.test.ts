import { spawn, spawnSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../../../src/config/index.ts'
import { REPO_ROOT } from '../../helpers/cli.ts'
import { haveTools } from '../../helpers/tools.ts'

const DEPLOY = join(REPO_ROOT, 'agent', 'deploy')

describe('deployment configs', () => {
  it('every example kiln.yaml validates against the config schema', async () => {
    const files = (await readdir(DEPLOY)).filter(f => f.endsWith('.yaml'))
    expect(files.sort()).toEqual(['kiln-build.yaml', 'kiln-compute.yaml', 'kiln-gateway.yaml', 'kiln-login.yaml'])
    const configs = Object.fromEntries(await Promise.all(files.map(async f => [f, await loadConfig({ file: join(DEPLOY, f), env: {} })] as const)))
    expect(configs['kiln-login.yaml']?.node.relay).toBe(true)
    expect(configs['kiln-compute.yaml']?.node.relayVia).toHaveLength(1)
    expect(configs['kiln-compute.yaml']?.node.listen).toEqual([])
    expect(configs['kiln-compute.yaml']?.node.mdns).toBe(false)
    expect(configs['kiln-gateway.yaml']?.gateway.tls).toBeDefined()
    for (const c of Object.values(configs)) expect(c.store.quota).toBeDefined()
  })
})

describe.skipIf(!haveTools('systemd-analyze'))('systemd user unit', () => {
  let home: string
  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'kiln-unit-'))
    await mkdir(join(home, 'run'), { mode: 0o700 })
  })
  afterEach(async () => { await rm(home, { recursive: true, force: true }) })

  const verify = (unit: string): { status: number | null, out: string } => {
    const r = spawnSync('systemd-analyze', ['--user', 'verify', unit], { env: { ...process.env, HOME: home, XDG_RUNTIME_DIR: join(home, 'run') }, encoding: 'utf8' })
    return { status: r.status, out: `${r.stdout}${r.stderr}` }
  }

  it('passes systemd-analyze verify with the launcher installed where its ExecStart expects it', async () => {
    const unit = join(DEPLOY, 'kiln-agent.service')
    expect(verify(unit).status, 'fails while the launcher is missing').not.toBe(0)
    await mkdir(join(home, '.local', 'bin'), { recursive: true })
    await symlink(join(REPO_ROOT, 'src', 'cli', 'kiln.mjs'), join(home, '.local', 'bin', 'kiln'))
    const r = verify(unit)
    expect(r.out).toBe('')
    expect(r.status).toBe(0)
    const text = await readFile(unit, 'utf8')
    for (const line of ['Restart=on-failure', 'KillSignal=SIGTERM', 'ExecStart=%h/.local/bin/kiln agent', 'ExecReload=/bin/kill -HUP $MAINPID', 'WantedBy=default.target']) expect(text).toContain(line)
    // The agent's drain must end before systemd's SIGKILL.
    const stopMin = Number(/^TimeoutStopSec=(\d+)min$/m.exec(text)?.[1])
    const drainMin = Number(/--drain-timeout (\d+)m\b/.exec(text)?.[1])
    expect(drainMin).toBeGreaterThan(0)
    expect(drainMin).toBeLessThan(stopMin)
  })
})

describe('Slurm batch script', () => {
  let dir: string
  let log: string

  /** Stubs on PATH: srun and scontrol record their arguments; kiln records its own and drains on SIGTERM. */
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-sbatch-'))
    log = join(dir, 'log')
    await mkdir(join(dir, 'bin'))
    await mkdir(log)
    await mkdir(join(dir, 'home'))
    await mkdir(join(dir, 'tmp'))
    await writeFile(join(dir, 'compute.yaml'), 'node: { relayClient: true }\n')
    const stubs: Record<string, string> = {
      srun: `#!/bin/sh
printf '%s\\n' "$@" > "$STUB_LOG/srun.args"
while [ "\${1#-}" != "$1" ]; do shift; done
exec "$@"
`,
      scontrol: `#!/bin/sh
printf '%s\\n' "$@" > "$STUB_LOG/scontrol.args"
`,
      kiln: `#!/bin/sh
printf '%s\\n' "$@" > "$STUB_LOG/kiln.args"
dd=
prev=
for a in "$@"; do [ "$prev" = --data-dir ] && dd=$a; prev=$a; done
[ -f "$dd/identity.key" ] || echo "key-of-first-run" > "$dd/identity.key"
if [ "\${STUB_IGNORE_TERM:-0}" = 1 ]; then
  trap '' TERM
else
  trap 'echo term >> "$STUB_LOG/events"; sleep 0.3; echo drained >> "$STUB_LOG/events"; exit 0' TERM
fi
echo started >> "$STUB_LOG/events"
while :; do sleep 1 & wait $!; done
`
    }
    for (const [name, text] of Object.entries(stubs)) {
      await writeFile(join(dir, 'bin', name), text)
      await chmod(join(dir, 'bin', name), 0o755)
    }
  })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  const events = async (): Promise<string[]> => (await readFile(join(log, 'events'), 'utf8').catch(() => '')).split('\n').filter(Boolean)
  const lines = async (file: string): Promise<string[] | undefined> => (await readFile(join(log, file), 'utf8').catch(() => undefined))?.split('\n').filter(Boolean)

  async function runScript (env: Record<string, string>, signalAfterStart: boolean): Promise<{ code: number | null, stderr: string }> {
    const child = spawn('bash', [join(DEPLOY, 'kiln-agent.sbatch')], {
      env: {
        PATH: `${join(dir, 'bin')}:/usr/bin:/bin`,
        HOME: join(dir, 'home'),
        TMPDIR: join(dir, 'tmp'),
        STUB_LOG: log,
        SLURM_JOB_ID: '4242',
        SLURM_CPUS_PER_TASK: '8',
        KILN_CONFIG: join(dir, 'compute.yaml'),
        KILN_BOOTSTRAP: '/dns4/login1/tcp/4001/p2p/12D3KooWLogin',
        ...env
      },
      stdio: ['ignore', 'ignore', 'pipe']
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<number | null>(resolve => child.on('exit', code => { resolve(code) }))
    const killer = setTimeout(() => { child.kill('SIGKILL') }, 20_000)
    if (signalAfterStart) {
      while (!(await events()).includes('started')) await new Promise(resolve => setTimeout(resolve, 50))
      child.kill('SIGTERM')
    }
    const code = await exited
    clearTimeout(killer)
    return { code, stderr }
  }

  it('starts the agent through srun with the compute flags, forwards SIGTERM, waits for the drain and exits 0', async () => {
    const r = await runScript({}, true)
    expect(r.stderr).toMatch(/SIGTERM: draining the agent/)
    expect(r.stderr).toMatch(/agent drained and exited cleanly/)
    expect(r.code).toBe(0)
    expect(await events()).toEqual(['started', 'term', 'drained'])
    const dataDir = join(dir, 'tmp', 'kiln-4242')
    expect(await lines('kiln.args')).toEqual([
      '--config', join(dir, 'compute.yaml'), '--data-dir', dataDir,
      'agent', '--no-mdns', '--max-builds', '2', '--drain-timeout', '90s', '--bootstrap', '/dns4/login1/tcp/4001/p2p/12D3KooWLogin'
    ])
    expect(await lines('srun.args')).toEqual(expect.arrayContaining(['--ntasks=1', '--cpus-per-task=8', '--kill-on-bad-exit=1']))
    expect(await lines('scontrol.args')).toBeUndefined()
    // The node-local data dir is gone; the identity it made is kept for the next allocation.
    await expect(stat(dataDir)).rejects.toThrow()
    expect(await readFile(join(dir, 'home', '.local', 'share', 'kiln-compute', 'identity.key'), 'utf8')).toBe('key-of-first-run\n')
  })

  it('requeues itself after a clean drain when KILN_REQUEUE=1, seeding the next run with the kept identity', async () => {
    const state = join(dir, 'home', '.local', 'share', 'kiln-compute')
    await mkdir(state, { recursive: true })
    await writeFile(join(state, 'identity.key'), 'kept-key\n')
    const r = await runScript({ KILN_REQUEUE: '1', KILN_KEEP_DATA: '1' }, true)
    expect(r.code).toBe(0)
    expect(await lines('scontrol.args')).toEqual(['requeue', '4242'])
    expect(await readFile(join(dir, 'tmp', 'kiln-4242', 'identity.key'), 'utf8')).toBe('kept-key\n')
  })

  it('kills an agent that does not drain in time and exits non-zero', async () => {
    const r = await runScript({ STUB_IGNORE_TERM: '1', KILN_DRAIN_SECONDS: '1' }, true)
    expect(r.stderr).toMatch(/drain took longer than 1s: killing the agent/)
    expect(r.code).toBe(1)
  })

  it('refuses to start without a config', async () => {
    const r = await runScript({ KILN_CONFIG: join(dir, 'missing.yaml') }, false)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no config at/)
    expect(await lines('srun.args')).toBeUndefined()
  })
})
