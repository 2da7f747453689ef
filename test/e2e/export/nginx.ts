/**
 * Debian's nginx as a child process on a loopback port, serving a static
 * registry site with the kiln-nginx.conf the exporter generated. Pid, logs
 * and temp paths live in a temp dir; stop() ends the process and removes it.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startHttpService } from '../../helpers/http-service.ts'
import { findTool } from '../../helpers/tools.ts'

export interface StaticServer {
  hostPort: string
  /** Checks and re-reads the configuration (after an export added manifests); new workers take over shortly after. */
  reload: () => Promise<void>
  stop: () => Promise<void>
}

export { freePort }

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
  let service
  try {
    service = await startHttpService('nginx', nginx, ['-c', conf, '-p', prefix, '-e', join(prefix, 'error.log')], `http://127.0.0.1:${port}/v2/`)
  } catch (err) {
    await rm(prefix, { recursive: true, force: true })
    throw err
  }
  const { child } = service
  return {
    hostPort: `127.0.0.1:${port}`,
    reload: async () => {
      execFileSync(nginx, ['-c', conf, '-p', prefix, '-e', join(prefix, 'error.log'), '-t'], { stdio: 'ignore' })
      child.kill('SIGHUP')
    },
    stop: async () => {
      await service.stop('SIGQUIT')
      await rm(prefix, { recursive: true, force: true })
    }
  }
}
