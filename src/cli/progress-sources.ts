/**
 * The modules' own progress callbacks turned into tasks of a
 * ProgressReporter (./progress.ts), so each command passes one line instead
 * of repeating the mapping: src/transfer's fetch reports, src/export's
 * events, src/oci's import callbacks, src/builder's build progress, and the
 * download of a URL source (./fetch-url.ts).
 */
import type { BuildProgress } from '../builder/index.ts'
import type { ExportProgress } from '../export/index.ts'
import type { Descriptor } from '../oci/index.ts'
import type { ProgressReporter, ProgressTask } from './progress.ts'

/** A fetch report of src/transfer (FetchProgress): the blob's task, ended when every byte is held. */
export function onFetch (progress: ProgressReporter, phase: string): (p: { digest: string, size: number, bytes: number, peers: number }) => void {
  return (p) => {
    const task = progress.task(phase, p.digest, { total: p.size })
    task.update(p.bytes, p.size, `from ${p.peers} peer${p.peers === 1 ? '' : 's'}`)
    if (p.bytes >= p.size) task.done(p.size)
  }
}

/** importImage's callbacks (src/oci): one task per blob stored; blobs already present are not work. */
export function onImport (progress: ProgressReporter): { onProgress: (d: Descriptor, bytes: number) => void, onBlob: (d: Descriptor, status: 'stored' | 'present') => void } {
  return {
    onProgress: (d, bytes) => { progress.task('import', d.digest, { total: d.size }).update(bytes) },
    onBlob: (d, status) => { if (status === 'stored') progress.task('import', d.digest, { total: d.size }).done(d.size) }
  }
}

/**
 * src/export's events for one output: a blob or manifest written is a task
 * done; the bytes written to a layout or archive advance one task for the
 * whole output, named `label`, started on its first report and ended by
 * done().
 */
export function onExport (progress: ProgressReporter, label: string): { onProgress: (p: ExportProgress) => void, written: (bytes: number) => void, done: () => void } {
  let task: ProgressTask | undefined
  const written = (bytes: number): void => {
    task ??= progress.task('export', label, { label })
    task.update(bytes)
  }
  return {
    written,
    onProgress: (p) => {
      if (p.event === 'written' && p.size !== undefined) written(p.size)
      else if ((p.event === 'blob' || p.event === 'manifest') && p.digest !== undefined && p.size !== undefined) progress.task('export', p.digest, { total: p.size }).done(p.size)
    },
    done: () => { task?.done() }
  }
}

/** src/builder's progress: a base blob pulled, a layer compressed into the store, the context packed. */
export function onBuild (progress: ProgressReporter): (p: BuildProgress) => void {
  return (p) => {
    const task = progress.task(p.what, p.id, { label: p.label, ...(p.total !== undefined ? { total: p.total } : {}) })
    if (p.done) task.done(p.bytes)
    else task.update(p.bytes, p.total)
  }
}

/** The download of a URL source (fetchPinned, ./fetch-url.ts), once its size is known or not. */
export function onDownload (progress: ProgressReporter, url: string): (total?: number) => ProgressTask {
  return total => progress.task('download', url, { label: url, ...(total !== undefined ? { total } : {}) })
}
