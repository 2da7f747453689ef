import type { Command } from 'commander'
import type { Descriptor } from '../../oci/index.ts'
import type { CliContext } from '../context.ts'
import { CliError } from '../errors.ts'
import { EXIT } from '../exit-codes.ts'
import { formatBytes } from '../output.ts'
import { createProgress, progressOption } from '../progress.ts'
import type { ProgressMode } from '../progress.ts'
import { onDownload, onExport, onImport } from '../progress-sources.ts'

/** Destinations that name their own format: a transport prefix or a `type=` output spec (src/export/output-spec.ts). */
const OUTPUT_FORM_RE = /^(?:oci|oci-layout|oci-archive|docker-archive|sif):|^docker:\/\/|^type=/

const shortDigest = (d: string): string => d.slice(7, 19)

function age (ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.round(s / 60)}m ago`
  if (s < 86400) return `${Math.round(s / 3600)}h ago`
  return `${Math.round(s / 86400)}d ago`
}

export function register (program: Command, ctx: CliContext): void {
  const image = program.command('image').description('images in the local store: import, list, inspect, export, unpack, remove')
    .addHelpText('after', `
Image references:
  oci:PATH[:TAG]           an OCI image layout directory
  oci-archive:FILE[:TAG]   a tar of an OCI image layout
  docker-archive:FILE      a docker save tarball
  docker://[HOST/]REPO[:TAG]  a registry (import only; names as docker pull reads them)
  REPO[:TAG], REPO@DIGEST  an image in the local store (tag defaults to latest)
  sha256:...               a manifest or index in the local store by digest`)

  image.command('import')
    .description('copy an image into the local store, verifying every blob')
    .argument('<source>', 'oci:PATH[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, docker://[HOST/]REPO[:TAG|@DIGEST] (every platform), or an http(s) URL of an oci-archive with --sha256')
    .option('-t, --tag <name>', 'name it REPO[:TAG] in the store (default: the name in the source, else the source file name)')
    .option('--sha256 <hex>', 'expected sha256 of a URL source; required for URLs')
    .option('--json', 'print JSON: a list of { name, digest, mediaType, size }')
    .addOption(progressOption())
    .addHelpText('after', `
Every blob is checked against its digest and size; if anything is wrong,
nothing is named and the blobs this import added are removed again.

Examples:
  kiln image import oci:./busybox-layout:base
  kiln image import docker-archive:app.tar -t site/app:2.1
  kiln image import docker://registry.example.org/hpc/app:1.0
  kiln image import https://example.org/sysroot.oci.tar --sha256 3f2a...e1
  kiln image import oci-archive:app.tar --progress=json 2>events.jsonl`)
    .action(async (sourceText: string, opts: { tag?: string, sha256?: string, json?: boolean, progress: ProgressMode }) => {
      const store = await ctx.store()
      const progress = await createProgress(opts.progress, { json: opts.json === true })
      ctx.onClose(progress.close)
      const oci = await import('../../oci/index.ts')
      const { isUrl, fetchPinned } = await import('../fetch-url.ts')
      const { namesForImport } = await import('../local-image.ts')
      let fetched: { path: string, cleanup: () => Promise<void> } | undefined
      if (isUrl(sourceText)) fetched = await fetchPinned(sourceText, opts.sha256, onDownload(progress, sourceText))
      try {
        const ref = oci.parseImageRef(fetched !== undefined ? `oci-archive:${fetched.path}` : sourceText)
        const started = Date.now()
        let stored = 0
        let names
        const report = onImport(progress)
        if (ref.transport === 'docker') {
          // Every platform of the registry image, each blob verified as it is stored; named as pulled unless --tag.
          const { clientFor, pullImage } = await import('../../registry/index.ts')
          const n = ref.name
          const pulled = await pullImage(clientFor(n), n.path, n.digest ?? n.tag ?? 'latest', store.content, { onProgress: report.onProgress, onBlob: (d, status) => { if (status === 'stored') stored++; report.onBlob(d, status) } })
          const descriptor = { mediaType: pulled.mediaType, digest: pulled.digest, size: pulled.size }
          names = await namesForImport([{ descriptor, refName: `${n.domain}/${n.path}:${n.tag ?? 'latest'}` }], ref, opts.tag)
        } else if (ref.transport === 'oci' || ref.transport === 'oci-archive' || ref.transport === 'docker-archive') {
          const images = await oci.importImage(store.content, ref, { onProgress: report.onProgress, onBlob: (d, status) => { if (status === 'stored') stored++; report.onBlob(d, status) } })
          names = await namesForImport(images, ref, opts.tag, fetched !== undefined ? sourceText : undefined)
        } else {
          throw new CliError(`cannot import from ${sourceText}`, { exitCode: EXIT.usage, hint: 'sources are oci:PATH[:TAG], oci-archive:FILE, docker-archive:FILE, docker://HOST/REPO[:TAG] or an http(s) URL with --sha256' })
        }
        store.db.transaction(() => {
          for (const n of names) store.refs.set(n.repository, n.tag, n.descriptor)
        })
        progress.close()
        const rows = names.map(n => ({ name: `${n.repository}:${n.tag}`, digest: n.descriptor.digest, mediaType: n.descriptor.mediaType, size: n.descriptor.size }))
        if (opts.json === true) { ctx.out.json(rows); return }
        for (const r of rows) ctx.out.line(`imported ${r.name} ${r.digest}`)
        ctx.out.line(`${stored} new blob(s) in ${((Date.now() - started) / 1000).toFixed(1)}s`)
      } finally {
        await fetched?.cleanup()
      }
    })

  image.command('export')
    .description('write an image from the local store anywhere kiln build --output writes (digests unchanged): a layout, an archive, a registry, a SIF...')
    .argument('<image>', 'REPO[:TAG], REPO@DIGEST or sha256:DIGEST')
    .argument('<dest>', 'a path (written as --format says), or any kiln build --output value: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF], docker://HOST/REPO:TAG, sif:FILE, type=...,KEY=VALUE (docs/exporters.md)')
    .option('--format <format>', 'for a plain path: oci-layout (a directory, merged into an existing layout), oci-archive (a file, replaced), sif (Apptainer\'s image format; one platform), local (the root filesystem as files, in a new or empty directory) or tar (a tar of the root filesystem)', 'oci-layout')
    .option('--ref-name <name>', 'name inside the layout (org.opencontainers.image.ref.name); default the image\'s tag')
    .option('--json', 'print JSON: { dest, format, digest, refName }')
    .addOption(progressOption())
    .addHelpText('after', `
Examples:
  kiln image export demo/hello:1 ./hello-layout && skopeo inspect oci:./hello-layout:1
  kiln image export demo/hello:1 oci-archive:hello.tar
  kiln image export demo/hello:1 docker-archive:hello.tar && docker load -i hello.tar
  kiln image export demo/hello:1 --format sif hello.sif && apptainer run hello.sif
  kiln image export demo/hello:1 type=local,dest=./rootfs,platform=linux/arm64
  kiln image export demo/hello:1 --format tar rootfs.tar`)
    .action(async (name: string, dest: string, opts: { format: string, refName?: string, json?: boolean, progress: ProgressMode }, command: Command) => {
      // A transport prefix is the format, as skopeo and buildx read it, never part of a file name.
      const spec = OUTPUT_FORM_RE.test(dest) ? dest : undefined
      if (spec !== undefined && command.getOptionValueSource('format') === 'cli') {
        throw new CliError(`${dest} names its format; --format ${opts.format} would contradict it`, { exitCode: EXIT.usage, hint: 'give either a transport prefix on the destination or --format with a plain path' })
      }
      if (!['oci-layout', 'oci-archive', 'sif', 'local', 'tar'].includes(opts.format)) {
        throw new CliError(`unknown --format ${JSON.stringify(opts.format)}`, { exitCode: EXIT.usage, hint: 'use oci-layout, oci-archive, sif, local or tar, or a transport prefix or type=... on the destination (oci-archive:FILE, docker-archive:FILE, type=local,dest=DIR...)' })
      }
      const store = await ctx.store()
      const oci = await import('../../oci/index.ts')
      const { resolveLocalImage } = await import('../local-image.ts')
      const found = await resolveLocalImage(store, name)
      const progress = await createProgress(opts.progress, { json: opts.json === true })
      ctx.onClose(progress.close)
      const report = onExport(progress, dest)
      if (spec !== undefined || opts.format === 'sif' || opts.format === 'local' || opts.format === 'tar') {
        const { createExporter, parseOutputSpec } = await import('../../export/index.ts')
        const target = spec !== undefined ? parseOutputSpec(spec) : { type: opts.format as 'sif' | 'local' | 'tar', dest }
        const names = opts.refName !== undefined ? [opts.refName] : found.name !== undefined ? [found.name] : []
        const r = await createExporter().export({ store: store.content, root: found.descriptor }, target, { tags: names, onProgress: report.onProgress })
        report.done()
        progress.close()
        if (opts.json === true) ctx.out.json({ dest: 'dest' in target ? target.dest : dest, format: target.type, digest: r.digest, refName: opts.refName ?? null })
        else ctx.out.line(`exported ${found.name ?? found.descriptor.digest} to ${r.description}`)
        return
      }
      const refName = opts.refName ?? (found.name !== undefined ? found.name.slice(found.name.lastIndexOf(':') + 1) : undefined)
      await oci.exportImage(store.content, found.descriptor, { format: opts.format as 'oci-layout' | 'oci-archive', dest, ...(refName !== undefined ? { refName } : {}), onProgress: report.written })
      report.done()
      progress.close()
      if (opts.json === true) ctx.out.json({ dest, format: opts.format, digest: found.descriptor.digest, refName: refName ?? null })
      else ctx.out.line(`exported ${found.name ?? found.descriptor.digest} to ${opts.format === 'oci-layout' ? `oci:${dest}` : `oci-archive:${dest}`}${refName !== undefined ? `:${refName}` : ''}`)
    })

  image.command('unpack')
    .description('lay an image out as a directory tree (a sysroot for other build systems), safely')
    .argument('<image>', 'a local REPO[:TAG] or digest, an oci:/oci-archive:/docker-archive: source, or an http(s) URL with --sha256')
    .argument('<dir>', 'target directory; must be empty or absent')
    .option('--platform <os/arch>', 'which entry of a multi-platform index (default: this machine\'s)')
    .option('--sha256 <hex>', 'expected sha256 of a URL source')
    .option('--keep-setuid', 'keep setuid/setgid bits (stripped by default)')
    .option('--json', 'print JSON: { dir, digest, platform, layers, warnings }')
    .addOption(progressOption())
    .addHelpText('after', `
Layers are applied in order with OCI whiteouts. Entries that would write
outside the target (absolute paths, .., symlink or hardlink escapes) stop the
unpack with an error; device nodes and fifos are skipped with a warning
(an ordinary user cannot create them); file owners are not applied.

Examples:
  kiln image unpack demo/hello:1 ./rootfs
  kiln image unpack oci:./multiarch:1 ./sysroot-arm64 --platform linux/arm64`)
    .action(async (name: string, dir: string, opts: { platform?: string, sha256?: string, keepSetuid?: boolean, json?: boolean, progress: ProgressMode }) => {
      const { readdir, mkdir } = await import('node:fs/promises')
      const existing = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return []
        throw new CliError(`cannot use ${dir} as the target: ${err.message}`, { exitCode: EXIT.usage })
      })
      if (existing.length > 0) throw new CliError(`${dir} is not empty`, { exitCode: EXIT.usage, hint: 'unpack into a new or empty directory' })
      const store = await ctx.store()
      const oci = await import('../../oci/index.ts')
      const { resolveLocalImage } = await import('../local-image.ts')
      const { isUrl, fetchPinned } = await import('../fetch-url.ts')
      let descriptor: Descriptor | undefined
      let fetched: { path: string, cleanup: () => Promise<void> } | undefined
      try {
        if (isUrl(name)) {
          const progress = await createProgress(opts.progress, { json: opts.json === true })
          ctx.onClose(progress.close)
          fetched = await fetchPinned(name, opts.sha256, onDownload(progress, name))
          progress.close()
        }
        const ref = oci.parseImageRef(fetched !== undefined ? `oci-archive:${fetched.path}` : name)
        if (ref.transport === 'local' || ref.transport === 'digest') {
          descriptor = (await resolveLocalImage(store, name)).descriptor
        } else if (ref.transport === 'docker') {
          throw new CliError('unpack reads the local store and image files; pull registry images first', { exitCode: EXIT.usage, hint: `skopeo copy ${name} oci:DIR:TAG, then kiln image unpack oci:DIR:TAG` })
        } else {
          const images = await oci.importImage(store.content, ref)
          if (images.length !== 1) throw new CliError(`${name} holds ${images.length} images; name one with :TAG`, { exitCode: EXIT.usage })
          descriptor = images[0]?.descriptor
        }
      } finally {
        await fetched?.cleanup()
      }
      if (descriptor === undefined) throw new CliError(`cannot resolve ${name}`, { exitCode: EXIT.usage })
      await mkdir(dir, { recursive: true })
      const warnings: string[] = []
      const platform = opts.platform !== undefined ? oci.parsePlatform(opts.platform) : oci.hostPlatform()
      const resolved = await oci.unpackImage(store.content, descriptor, dir, {
        platform,
        keepSetuid: opts.keepSetuid === true,
        onWarning: (w) => { warnings.push(`${w.entry}: ${w.message}`) }
      })
      if (opts.json === true) {
        ctx.out.json({ dir, digest: resolved.descriptor.digest, platform: oci.formatPlatform(platform), layers: resolved.manifest.layers.length, warnings })
        return
      }
      for (const w of warnings) ctx.out.warn(w)
      ctx.out.line(`unpacked ${resolved.descriptor.digest} (${oci.formatPlatform(platform)}, ${resolved.manifest.layers.length} layers) into ${dir}`)
    })

  image.command('ls')
    .description('list the images in the local store')
    .option('--json', 'print JSON: a list of { repository, tag, digest, mediaType, platforms, size, complete, updatedAt }')
    .addHelpText('after', '\nExample:\n  kiln image ls --json | jq -r \'.[] | "\\(.repository):\\(.tag) \\(.digest)"\'')
    .action(async (opts: { json?: boolean }) => {
      const store = await ctx.store()
      const { describeImage } = await import('../describe-image.ts')
      const rows = []
      for (const ref of store.refs.list()) {
        let summary
        try {
          summary = await describeImage(store, { mediaType: ref.mediaType, digest: ref.digest, size: ref.size })
        } catch {
          summary = undefined
        }
        rows.push({
          repository: ref.repository,
          tag: ref.tag,
          digest: ref.digest,
          mediaType: ref.mediaType,
          platforms: summary?.platforms ?? [],
          size: summary?.size ?? ref.size,
          complete: summary?.complete ?? false,
          updatedAt: new Date(ref.updatedAt).toISOString()
        })
      }
      if (opts.json === true) { ctx.out.json(rows); return }
      if (rows.length === 0) { ctx.out.line('no images; add one with: kiln image import oci:PATH:TAG (or kiln build)'); return }
      ctx.out.table(rows, [
        { header: 'REPOSITORY', value: r => r.repository },
        { header: 'TAG', value: r => r.tag },
        { header: 'DIGEST', value: r => shortDigest(r.digest) },
        { header: 'PLATFORMS', value: r => r.platforms.join(',') + (r.complete ? '' : ' (partial)') },
        { header: 'SIZE', value: r => formatBytes(r.size), right: true },
        { header: 'UPDATED', value: r => age(Date.parse(r.updatedAt)) }
      ])
    })

  image.command('inspect')
    .description('show an image: digest, platforms, layers, config')
    .argument('<image>', 'REPO[:TAG], REPO@DIGEST or sha256:DIGEST')
    .option('--json', 'print JSON (includes digest, mediaType, size, platforms, manifests with config and layers)')
    .addHelpText('after', '\nExample:\n  kiln image inspect demo/hello:1 --json | jq -r .digest')
    .action(async (name: string, opts: { json?: boolean }) => {
      const store = await ctx.store()
      const { resolveLocalImage } = await import('../local-image.ts')
      const { describeImage } = await import('../describe-image.ts')
      const found = await resolveLocalImage(store, name)
      const s = await describeImage(store, found.descriptor)
      const names = store.refs.byDigest(s.digest).map(r => `${r.repository}:${r.tag}`)
      if (opts.json === true) { ctx.out.json({ ...s, names }); return }
      ctx.out.line(`digest:     ${s.digest}`)
      ctx.out.line(`media type: ${s.mediaType}`)
      ctx.out.line(`names:      ${names.join(', ') || '(none)'}`)
      ctx.out.line(`size:       ${formatBytes(s.size)}${s.complete ? '' : ' (some blobs are not in the local store)'}`)
      for (const m of s.manifests) {
        ctx.out.line('')
        ctx.out.line(`platform ${m.platform}  manifest ${m.digest}`)
        const c = m.config?.config
        if (m.config?.created !== undefined) ctx.out.line(`  created:    ${m.config.created}`)
        if (c?.Entrypoint != null) ctx.out.line(`  entrypoint: ${JSON.stringify(c.Entrypoint)}`)
        if (c?.Cmd != null) ctx.out.line(`  cmd:        ${JSON.stringify(c.Cmd)}`)
        if (c?.WorkingDir !== undefined && c.WorkingDir !== '') ctx.out.line(`  workdir:    ${c.WorkingDir}`)
        if (c?.User !== undefined && c.User !== '') ctx.out.line(`  user:       ${c.User}`)
        for (const e of c?.Env ?? []) ctx.out.line(`  env:        ${e}`)
        for (const [k, v] of Object.entries(c?.Labels ?? {})) ctx.out.line(`  label:      ${k}=${v}`)
        ctx.out.line(`  layers (${m.layers.length}):`)
        for (const l of m.layers) ctx.out.line(`    ${l.digest}  ${formatBytes(l.size).padStart(9)}  ${l.mediaType}`)
      }
    })

  image.command('rm')
    .description('remove image names from the local store (kiln gc then frees unreferenced blobs)')
    .argument('<names...>', 'REPO[:TAG] names to remove')
    .option('--json', 'print JSON: the removed names')
    .addHelpText('after', '\nExample:\n  kiln image rm demo/hello:1 && kiln gc')
    .action(async (names: string[], opts: { json?: boolean }) => {
      const store = await ctx.store()
      const { parseTagName } = await import('../local-image.ts')
      const parsed = await Promise.all(names.map(parseTagName))
      const missing = parsed.filter(p => store.refs.find(p.repository, p.tag) === undefined)
      if (missing.length > 0) {
        throw new CliError(`no image named ${missing.map(m => `${m.repository}:${m.tag}`).join(', ')}; nothing removed`, { exitCode: EXIT.notFound, hint: 'kiln image ls lists the names' })
      }
      store.db.transaction(() => { for (const p of parsed) store.refs.delete(p.repository, p.tag) })
      const removed = parsed.map(p => `${p.repository}:${p.tag}`)
      if (opts.json === true) ctx.out.json({ removed })
      else for (const r of removed) ctx.out.line(`removed ${r}`)
    })
}
