/**
 * type=static: a static registry site in a directory (./site-writer.ts),
 * plus the generated server configuration (./site-config.ts):
 * `kiln-nginx.conf` at the root and `.htaccess` files for Apache.
 */
import { SITE_NGINX_FILE } from './constants.ts'
import { OutputSpecInvalidError } from './errors.ts'
import type { ExportImage, ExportOptions, ExportResult } from './index.ts'
import { targetNames } from './names.ts'
import type { StaticSiteSpec } from './output-spec.ts'
import { htaccessFiles, nginxConfig } from './site-config.ts'
import { createDirObjectStore } from './site-fs.ts'
import { writeSite } from './site-writer.ts'

const TEXT = 'text/plain'

export async function exportStaticSite (image: ExportImage, spec: StaticSiteSpec, options: ExportOptions): Promise<ExportResult> {
  const names = targetNames(spec.names, options)
  if (names.length === 0) throw new OutputSpecInvalidError('type=static needs name=REPO[:TAG] (or a -t tag)', ['name'])
  const site = createDirObjectStore(spec.dest)
  const { state, written } = await writeSite(image, names, site, { ...options, type: 'static' })
  const enc = new TextEncoder()
  await site.put(SITE_NGINX_FILE, enc.encode(nginxConfig(state)), TEXT)
  for (const [path, text] of htaccessFiles(state)) await site.put(path, enc.encode(text), TEXT)
  return { description: `static site ${site.location} (${written.join(', ')})`, digest: image.root.digest }
}
