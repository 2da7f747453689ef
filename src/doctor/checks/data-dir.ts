/**
 * Whether the data dir is private (src/doctor/data-dir.ts): a too-open dir
 * or key/database file lets other users of the node read images the gateway
 * would refuse them, and the node's keys. Only reports: the next kiln
 * command that opens the data dir fixes it.
 */
import { describeTooOpen, formatMode, inspectDataDir } from '../data-dir.ts'
import type { Check } from '../types.ts'

const ID = 'datadir.private'
const TITLE = 'data dir privacy'

export const checkDataDir: Check = async ({ config, system }) => {
  const dir = config.dataDir
  if (await system.mode(dir) === undefined) {
    return [{ id: ID, title: TITLE, status: 'ok', detail: `${dir} does not exist yet; kiln creates it 0700` }]
  }
  const found = await inspectDataDir(dir, system.mode)
  if (found.length === 0) return [{ id: ID, title: TITLE, status: 'ok', detail: `${dir} and its key and database files are private to you` }]
  return [{
    id: ID,
    title: TITLE,
    status: 'warn',
    detail: found.map(describeTooOpen).join('; '),
    fix: `any kiln command that opens the data dir (kiln store df, kiln build...) makes them private, or: ${found.map(f => `chmod ${formatMode(f.want)} ${f.path}`).join('; ')}`
  }]
}
