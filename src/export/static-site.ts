/**
 * type=static: a static registry site in a directory (./site-writer.ts),
 * plus the generated server configuration (./site-config.ts):
 * `kiln-nginx.conf` at the root and `.htaccess` files for Apache. With
 * `sif=true`, each tag T also gets the image's SIF ORAS artifact at `T.sif`
 * (./site-sif.ts), written after the image so its subject is there first.
 */
import { SITE_NGINX_FILE } from './constants.ts'
import { OutputSpecInvalidError } from './errors.ts'
import type { ExportImage, ExportOptions, ExportResult, ExporterComponents } from './index.ts'
import { targetNames } from './names.ts'
import type { StaticSiteSpec } from './output-spec.ts'
import { htaccessFiles, nginxConfig } from './site-config.ts'
import { createDirObjectStore } from './site-fs.ts'
import { makeSiteSif, sifTagName } from './site-sif.ts'
import { checkSiteName, writeSite } from './site-writer.ts'

const TEXT = 'text/plain'

export async function exportStaticSite (image: ExportImage, spec: StaticSiteSpec, options: ExportOptions, components: ExporterComponents = {}): Promise<ExportResult> {
  const names = targetNames(spec.names, options)
  if (names.length === 0) throw new OutputSpecInvalidError('type=static needs name=REPO[:TAG] (or a -t tag)', ['name'])
  const sifNames = spec.sif ? names.map(sifTagName) : []
  for (const name of [...names, ...sifNames]) checkSiteName(name)
  const sif = spec.sif
    ? await makeSiteSif(image, { ...(components.tmpDir === undefined ? {} : { tmpDir: components.tmpDir }), ...(options.signal === undefined ? {} : { signal: options.signal }) })
    : undefined
  try {
    const site = createDirObjectStore(spec.dest)
    let { state, written } = await writeSite(image, names, site, { ...options, type: 'static' })
    if (sif !== undefined) {
      const r = await writeSite(sif.image, sifNames, site, { ...options, type: 'static' })
      state = r.state
      written = [...written, ...r.written]
    }
    const enc = new TextEncoder()
    await site.put(SITE_NGINX_FILE, enc.encode(nginxConfig(state)), TEXT)
    for (const [path, text] of htaccessFiles(state)) await site.put(path, enc.encode(text), TEXT)
    return { description: `static site ${site.location} (${written.join(', ')})`, digest: image.root.digest }
  } finally {
    await sif?.dispose()
  }
}
