/**
 * Debian's nginx as a child process on a loopback port, serving a static
 * registry site with the kiln-nginx.conf the exporter generated. Pid, logs
 * and temp paths live in a temp dir; stop() ends the process and removes it.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findTool } from '../../helpers/tools.ts'

export interface StaticServer {
  hostPort: string
  /** Checks and re-reads the configuration (after an export added manifests); new workers take over shortly after. */
  reload: () => Promise<void>
  stop: () => Promise<void>
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => { resolve(port) })
    })
  })
}

export async function startNginx (siteDir: string): Promise<StaticServer> {
  const nginx = findTool('nginx') as string
  const prefix = await mkdtemp(join(tmpdir(), 'kiln-nginx-'))
  const port = await freePort()
  const built = execFileSync(nginx, ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) + ''
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .filter(t => !built.includes(`--without-http_${t}_module`))
    .map(t => `${t}_temp_path ${join(prefix, `${t}-temp`)};`).join('\n  ')
  const conf = join(prefix, 'nginx.conf')
  await writeFile(conf, `${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
daemon off;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  ${temps}
  server {
    listen 127.0.0.1:${port};
    root ${siteDir};
    include ${join(siteDir, 'kiln-nginx.conf')};
  }
}
`)
  const child: ChildProcess = spawn(nginx, ['-c', conf, '-p', prefix, '-e', join(prefix, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`)
      await res.body?.cancel()
      break
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL')
        await rm(prefix, { recursive: true, force: true })
        throw new Error(`nginx did not start: ${stderr.slice(-800)}`)
      }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  return {
    hostPort: `127.0.0.1:${port}`,
    reload: async () => {
      execFileSync(nginx, ['-c', conf, '-p', prefix, '-e', join(prefix, 'error.log'), '-t'], { stdio: 'ignore' })
      child.kill('SIGHUP')
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise(resolve => child.once('exit', resolve))
        child.kill('SIGQUIT')
        const t = setTimeout(() => child.kill('SIGKILL'), 5_000)
        await exited
        clearTimeout(t)
      }
      await rm(prefix, { recursive: true, force: true })
    }
  }
}
