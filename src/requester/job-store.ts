/**
 * The requester's record of its jobs, in the data dir's database: the
 * signed job, the state of each platform (awarded builder, last progress,
 * verified result or error), the log lines received, and the names the
 * result is to get locally. It is the RequesterJournal the requester
 * writes to, and what `kiln jobs` reads and `kiln jobs resume` follows.
 *
 * Job states: `running` until every platform settled, then `succeeded`,
 * `failed` or `cancelled`. Platform states: `waiting` (offers), `awarded`,
 * the builder's progress states, then `succeeded`/`failed`/`cancelled`.
 */
import type { Envelope } from '../../protocols/envelope.ts'
import type { JobPayload } from '../../protocols/job.ts'
import type { KilnDb } from '../db/index.ts'
import type { JobEvent, PlatformResult, RequesterJournal, ResumeSpec } from './index.ts'
import { JobCancelledError } from './errors.ts'

const MIGRATIONS = [
  `CREATE TABLE requester_jobs (
     id TEXT PRIMARY KEY,
     job TEXT NOT NULL,
     verify INTEGER NOT NULL,
     state TEXT NOT NULL,
     error TEXT,
     index_digest TEXT,
     index_size INTEGER,
     meta TEXT NOT NULL DEFAULT '{}',
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE requester_platforms (
     job_id TEXT NOT NULL REFERENCES requester_jobs(id) ON DELETE CASCADE,
     platform TEXT NOT NULL,
     state TEXT NOT NULL,
     builders TEXT NOT NULL DEFAULT '[]',
     digest TEXT,
     result TEXT,
     error TEXT,
     cached_steps INTEGER,
     steps INTEGER,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (job_id, platform)
   );
   CREATE TABLE requester_logs (
     job_id TEXT NOT NULL REFERENCES requester_jobs(id) ON DELETE CASCADE,
     platform TEXT NOT NULL,
     builder TEXT NOT NULL,
     seq INTEGER NOT NULL,
     line TEXT NOT NULL,
     PRIMARY KEY (job_id, platform, builder, seq)
   );
   CREATE INDEX requester_jobs_created ON requester_jobs (created_at);`
]

/** What the CLI keeps with a job so that a resumed job ends as the submit would have. */
export interface JobMeta {
  tags?: string[]
  output?: string
}

export interface StoredPlatform {
  platform: string
  state: string
  builders: string[]
  digest?: string
  error?: string
  cachedSteps?: number
  steps?: number
  result?: PlatformResult
  updatedAt: number
}

export interface StoredJob {
  id: string
  job: Envelope<JobPayload>
  verify: number
  state: 'running' | 'succeeded' | 'failed' | 'cancelled'
  error?: string
  index?: { digest: string, size: number }
  meta: JobMeta
  platforms: StoredPlatform[]
  createdAt: number
  updatedAt: number
}

export interface LogLine { platform: string, builder: string, seq: number, line: string }

export interface RequesterJobStore extends RequesterJournal {
  setMeta: (jobId: string, meta: JobMeta) => void
  get: (jobId: string) => StoredJob | undefined
  /** Most recent first. */
  list: (limit?: number) => StoredJob[]
  logs: (jobId: string, platform?: string) => LogLine[]
  /** What `Requester.resume` needs to follow a stored job again. */
  resumeSpec: (jobId: string) => Omit<ResumeSpec, 'signal' | 'onEvent'> | undefined
  /** Marks a job ended from outside a running requester (`kiln jobs cancel`). */
  markEnded: (jobId: string, state: 'failed' | 'cancelled', error: string) => void
}

interface JobRow { id: string, job: string, verify: number, state: string, error: string | null, index_digest: string | null, index_size: number | null, meta: string, created_at: number, updated_at: number }
interface PlatformRow { job_id: string, platform: string, state: string, builders: string, digest: string | null, result: string | null, error: string | null, cached_steps: number | null, steps: number | null, updated_at: number }

const FINAL = new Set(['succeeded', 'failed', 'cancelled'])
const JOB_STATES = new Set(['running', 'succeeded', 'failed', 'cancelled'])

export function createRequesterJobStore (db: KilnDb, log: (message: string) => void = () => {}): RequesterJobStore {
  db.migrate('requester-jobs', MIGRATIONS)
  const q = {
    insertJob: db.sql.prepare(`INSERT INTO requester_jobs (id, job, verify, state, created_at, updated_at) VALUES (?, ?, ?, 'running', ?, ?)`),
    insertPlatform: db.sql.prepare(`INSERT INTO requester_platforms (job_id, platform, state, updated_at) VALUES (?, ?, 'waiting', ?)`),
    platform: db.sql.prepare('SELECT * FROM requester_platforms WHERE job_id = ? AND platform = ?'),
    setPlatformState: db.sql.prepare(`UPDATE requester_platforms SET state = ?, updated_at = ? WHERE job_id = ? AND platform = ? AND state NOT IN ('succeeded', 'failed', 'cancelled')`),
    setBuilders: db.sql.prepare('UPDATE requester_platforms SET builders = ?, state = ?, updated_at = ? WHERE job_id = ? AND platform = ?'),
    setCached: db.sql.prepare('UPDATE requester_platforms SET cached_steps = ?, steps = ?, updated_at = ? WHERE job_id = ? AND platform = ?'),
    setDone: db.sql.prepare(`UPDATE requester_platforms SET state = 'succeeded', digest = ?, builders = ?, result = ?, error = NULL, updated_at = ? WHERE job_id = ? AND platform = ?`),
    setFailed: db.sql.prepare(`UPDATE requester_platforms SET state = ?, error = ?, updated_at = ? WHERE job_id = ? AND platform = ? AND state <> 'succeeded'`),
    addLog: db.sql.prepare('INSERT OR IGNORE INTO requester_logs (job_id, platform, builder, seq, line) VALUES (?, ?, ?, ?, ?)'),
    finish: db.sql.prepare('UPDATE requester_jobs SET state = ?, error = ?, index_digest = ?, index_size = ?, updated_at = ? WHERE id = ?'),
    touch: db.sql.prepare('UPDATE requester_jobs SET updated_at = ? WHERE id = ?'),
    meta: db.sql.prepare('UPDATE requester_jobs SET meta = ? WHERE id = ?'),
    job: db.sql.prepare('SELECT * FROM requester_jobs WHERE id = ?'),
    jobs: db.sql.prepare('SELECT * FROM requester_jobs ORDER BY created_at DESC LIMIT ?'),
    platforms: db.sql.prepare('SELECT * FROM requester_platforms WHERE job_id = ? ORDER BY platform'),
    logs: db.sql.prepare('SELECT platform, builder, seq, line FROM requester_logs WHERE job_id = ? ORDER BY platform, builder, seq'),
    logsOf: db.sql.prepare('SELECT platform, builder, seq, line FROM requester_logs WHERE job_id = ? AND platform = ? ORDER BY builder, seq')
  }
  const guard = (what: string, fn: () => void): void => {
    try { fn() } catch (err) { log(`recording ${what} failed: ${(err as Error).message}`) }
  }
  const now = (): number => Date.now()

  const builders = (jobId: string, platform: string): string[] => {
    const row = q.platform.get(jobId, platform) as PlatformRow | undefined
    return row === undefined ? [] : JSON.parse(row.builders) as string[]
  }

  const onEvent = (jobId: string, e: JobEvent): void => {
    switch (e.kind) {
      case 'award': {
        const b = builders(jobId, e.platform)
        if (!b.includes(e.builder)) b.push(e.builder)
        q.setBuilders.run(JSON.stringify(b), 'awarded', now(), jobId, e.platform)
        break
      }
      case 'lost': {
        const b = builders(jobId, e.platform).filter(x => x !== e.builder)
        q.setBuilders.run(JSON.stringify(b), b.length > 0 ? 'awarded' : 'waiting', now(), jobId, e.platform)
        break
      }
      case 'progress':
        if (!FINAL.has(e.state)) q.setPlatformState.run(e.state, now(), jobId, e.platform)
        break
      case 'log':
        db.transaction(() => { e.lines.forEach((line, i) => { q.addLog.run(jobId, e.platform, e.builder, e.seq + i, line) }) })
        break
      case 'fetching':
        q.setPlatformState.run('fetching-result', now(), jobId, e.platform)
        break
      default:
        return
    }
    q.touch.run(now(), jobId)
  }

  const parseJob = (row: JobRow): StoredJob | undefined => {
    try {
      const platforms = (q.platforms.all(row.id) as unknown as PlatformRow[]).map((p): StoredPlatform => ({
        platform: p.platform,
        state: p.state,
        builders: JSON.parse(p.builders) as string[],
        updatedAt: p.updated_at,
        ...(p.digest !== null ? { digest: p.digest } : {}),
        ...(p.error !== null ? { error: p.error } : {}),
        ...(p.cached_steps !== null ? { cachedSteps: p.cached_steps } : {}),
        ...(p.steps !== null ? { steps: p.steps } : {}),
        ...(p.result !== null ? { result: JSON.parse(p.result) as PlatformResult } : {})
      }))
      if (!JOB_STATES.has(row.state)) throw new Error(`unknown state ${row.state}`)
      return {
        id: row.id,
        job: JSON.parse(row.job) as Envelope<JobPayload>,
        verify: row.verify,
        state: row.state as StoredJob['state'],
        meta: JSON.parse(row.meta) as JobMeta,
        platforms,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
        ...(row.error !== null ? { error: row.error } : {}),
        ...(row.index_digest !== null ? { index: { digest: row.index_digest, size: row.index_size ?? 0 } } : {})
      }
    } catch (err) {
      log(`requester_jobs row ${row.id} is unreadable: ${(err as Error).message}`)
      return undefined
    }
  }

  const get = (jobId: string): StoredJob | undefined => {
    const row = q.job.get(jobId) as JobRow | undefined
    return row === undefined ? undefined : parseJob(row)
  }

  return {
    created: (job, meta) => {
      guard('a job', () => {
        db.transaction(() => {
          q.insertJob.run(job.payload.jobId, JSON.stringify(job), meta.verify, now(), now())
          for (const p of job.payload.platforms) q.insertPlatform.run(job.payload.jobId, p, now())
        })
      })
    },
    event: (jobId, e) => {
      guard(`a ${e.kind} event`, () => {
        onEvent(jobId, e)
        if (e.kind === 'progress' && e.state === 'exporting') {
          // The builder reports its step-cache hits in the final exporting progress (protocols/job.md §3).
          const m = /^(\d+) of (\d+) steps cached$/.exec(e.detail ?? '')
          if (m !== null) q.setCached.run(Number(m[1]), Number(m[2]), now(), jobId, e.platform)
        }
      })
    },
    platformDone: (jobId, r) => {
      guard('a result', () => { q.setDone.run(r.digest, JSON.stringify(r.builders), JSON.stringify(r), now(), jobId, r.platform) })
    },
    platformFailed: (jobId, platform, err) => {
      guard('a failure', () => { q.setFailed.run(err.name === JobCancelledError.name ? 'cancelled' : 'failed', err.message.slice(0, 4096), now(), jobId, platform) })
    },
    finished: (jobId, outcome) => {
      guard('the end of a job', () => {
        q.finish.run(outcome.state, outcome.state === 'succeeded' ? null : outcome.error.slice(0, 4096),
          outcome.state === 'succeeded' ? outcome.index?.digest ?? null : null, outcome.state === 'succeeded' ? outcome.index?.size ?? null : null, now(), jobId)
      })
    },
    setMeta: (jobId, meta) => { guard('job names', () => { q.meta.run(JSON.stringify(meta), jobId) }) },
    get,
    list: (limit = 50) => (q.jobs.all(limit) as unknown as JobRow[]).map(parseJob).filter((j): j is StoredJob => j !== undefined),
    logs: (jobId, platform) => (platform === undefined ? q.logs.all(jobId) : q.logsOf.all(jobId, platform)) as unknown as LogLine[],
    resumeSpec: (jobId) => {
      const j = get(jobId)
      if (j === undefined) return undefined
      return {
        job: j.job,
        verify: j.verify,
        platforms: j.platforms.map(p => ({ platform: p.platform, builders: p.builders, ...(p.state === 'succeeded' && p.result !== undefined ? { done: p.result } : {}) }))
      }
    },
    markEnded: (jobId, state, error) => {
      db.transaction(() => {
        q.finish.run(state, error, null, null, now(), jobId)
        for (const p of q.platforms.all(jobId) as unknown as PlatformRow[]) {
          if (!FINAL.has(p.state)) q.setFailed.run(state, error, now(), jobId, p.platform)
        }
      })
    }
  }
}
