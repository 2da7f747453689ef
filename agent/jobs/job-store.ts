/**
 * The agent's record of awarded jobs, in the data dir's database
 * (table `agent_jobs`): the signed job, who asked, its state and, once
 * finished, the result payload. A restarted agent finds what it was
 * building and hands it back; a requester that asks again (a repeated
 * award) gets the result again.
 */
import type { Envelope } from '../../protocols/envelope.ts'
import { JobState, ResultPayload } from '../../protocols/job.ts'
import type { JobPayload } from '../../protocols/job.ts'
import type { KilnDb } from '../../src/db/index.ts'
import type { AgentJobRecord, AgentJournal } from './index.ts'

const MIGRATIONS = [
  `CREATE TABLE agent_jobs (
     job_id TEXT NOT NULL,
     platform TEXT NOT NULL,
     requester TEXT NOT NULL,
     job TEXT NOT NULL,
     state TEXT NOT NULL,
     result TEXT,
     accepted_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (job_id, platform)
   );
   CREATE INDEX agent_jobs_updated ON agent_jobs (updated_at);`
]

const FINAL = new Set(['succeeded', 'failed', 'cancelled'])

interface Row { job_id: string, platform: string, requester: string, job: string, state: string, result: string | null, accepted_at: number, updated_at: number }

export function createAgentJobStore (db: KilnDb, log: (message: string) => void = () => {}): AgentJournal {
  db.migrate('agent-jobs', MIGRATIONS)
  const upsert = db.sql.prepare(`INSERT INTO agent_jobs (job_id, platform, requester, job, state, accepted_at, updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?)
    ON CONFLICT (job_id, platform) DO UPDATE SET requester = excluded.requester, job = excluded.job, state = 'queued', result = NULL, updated_at = excluded.updated_at`)
  const setState = db.sql.prepare('UPDATE agent_jobs SET state = ?, updated_at = ? WHERE job_id = ? AND platform = ?')
  const setResult = db.sql.prepare('UPDATE agent_jobs SET state = ?, result = ?, updated_at = ? WHERE job_id = ? AND platform = ?')
  const one = db.sql.prepare('SELECT * FROM agent_jobs WHERE job_id = ? AND platform = ?')
  const open = db.sql.prepare(`SELECT * FROM agent_jobs WHERE state NOT IN ('succeeded', 'failed', 'cancelled') ORDER BY accepted_at`)
  const recent = db.sql.prepare('SELECT * FROM agent_jobs ORDER BY updated_at DESC LIMIT ?')

  // Rows were written by this module, but the db is a file on disk: parse them like any input.
  const toRecord = (row: Row): AgentJobRecord | undefined => {
    try {
      const state = JobState.parse(row.state)
      const result = row.result === null ? undefined : ResultPayload.parse(JSON.parse(row.result))
      return {
        jobId: row.job_id, platform: row.platform, requester: row.requester,
        job: JSON.parse(row.job) as Envelope<JobPayload>, state, acceptedAt: row.accepted_at, updatedAt: row.updated_at,
        ...(result !== undefined ? { result } : {})
      }
    } catch (err) {
      log(`agent_jobs row ${row.job_id}/${row.platform} is unreadable: ${(err as Error).message}`)
      return undefined
    }
  }
  const guard = (what: string, fn: () => void): void => {
    try { fn() } catch (err) { log(`recording ${what} failed: ${(err as Error).message}`) }
  }

  return {
    accepted: (r) => { guard('an accepted job', () => { const now = Date.now(); upsert.run(r.jobId, r.platform, r.requester, JSON.stringify(r.job), now, now) }) },
    state: (jobId, platform, state) => { if (!FINAL.has(state)) guard('a job state', () => { setState.run(state, Date.now(), jobId, platform) }) },
    finished: (jobId, platform, result) => { guard('a job result', () => { setResult.run(result.status, JSON.stringify(result), Date.now(), jobId, platform) }) },
    get: (jobId, platform) => {
      const row = one.get(jobId, platform) as Row | undefined
      return row === undefined ? undefined : toRecord(row)
    },
    unfinished: () => (open.all() as unknown as Row[]).map(toRecord).filter((r): r is AgentJobRecord => r !== undefined),
    list: (limit = 100) => (recent.all(limit) as unknown as Row[]).map(toRecord).filter((r): r is AgentJobRecord => r !== undefined)
  }
}
