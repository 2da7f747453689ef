import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import { afterEach, describe, expect, it } from 'vitest'
import { CONTENT_TYPE, createMetrics, createRegistry, startMetrics, startMetricsServer } from '../../../src/metrics/index.ts'
import type { MetricsServer } from '../../../src/metrics/index.ts'
import { MetricsAddressError, MetricsListenError } from '../../../src/metrics/errors.ts'
import { isErrorOf } from '../../../src/util/error-class.ts'

/**
 * A strict check of the text format's line grammar, beside the parser, for
 * what the parser flattens away (labels on histogram samples).
 */
const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"'
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]Inf|NaN)'
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(${LABEL}(?:,${LABEL})*)?\\})? (${VALUE})$`)
const COMMENT = new RegExp(`^# (?:HELP ${NAME} .*|TYPE ${NAME} (?:counter|gauge|histogram|summary|untyped))$`)

interface Line { name: string, labels: Record<string, string>, value: number }

function strictLines (text: string): Line[] {
  expect(text.endsWith('\n')).toBe(true)
  const out: Line[] = []
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('#')) { expect(line).toMatch(COMMENT); continue }
    const m = SAMPLE.exec(line)
    expect(m, `not a valid sample line: ${line}`).not.toBeNull()
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m?.[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[k as string] = (v as string).replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c))
    }
    const raw = m?.[3] as string
    out.push({ name: m?.[1] as string, labels, value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw) })
  }
  return out
}

function find (lines: Line[], name: string, labels: Record<string, string>): number | undefined {
  return lines.find(l => l.name === name && Object.keys(labels).length === Object.keys(l.labels).length &&
    Object.entries(labels).every(([k, v]) => l.labels[k] === v))?.value
}

describe('metrics', () => {
  let server: MetricsServer | undefined
  afterEach(async () => { await server?.close(); server = undefined })

  it('serves /metrics over loopback in Prometheus text format with the observed samples', async () => {
    const metrics = createMetrics()
    let storeBytes = 0
    metrics.onCollect(() => { metrics.set('kiln_store_bytes', {}, storeBytes) })
    server = await startMetricsServer({ metrics, listen: '127.0.0.1:0' })

    metrics.inc('kiln_jobs_total', { state: 'received' })
    metrics.inc('kiln_jobs_total', { state: 'received' })
    metrics.inc('kiln_jobs_total', { state: 'failed' })
    metrics.set('kiln_queue_length', {}, 3)
    metrics.set('kiln_jobs', { state: 'building' }, 1)
    const odd = 'peer "quoted" \\ back\nslash'
    metrics.inc('kiln_bytes_served_total', { peer: odd }, 1024)
    metrics.inc('kiln_bytes_fetched_total', { peer: '12D3KooWabc' }, 10)
    metrics.inc('kiln_bytes_fetched_total', { peer: '12D3KooWabc' }, 5)
    for (const s of [0.02, 0.7, 40, 5000]) metrics.observe('kiln_build_duration_seconds', { platform: 'linux/amd64', outcome: 'succeeded' }, s)
    metrics.observe('kiln_dht_lookup_duration_seconds', { kind: 'providers' }, 0.2)
    metrics.inc('kiln_dht_lookups_total', { kind: 'providers', outcome: 'found' })
    storeBytes = 123456

    const res = await fetch(server.url)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe(CONTENT_TYPE)
    const text = await res.text()

    const families = parsePrometheusTextFormat(text)
    const family = (name: string): (typeof families)[number] | undefined => families.find(f => f.name === name)
    expect(family('kiln_jobs_total')?.type).toBe('COUNTER')
    expect(family('kiln_jobs_total')?.metrics).toEqual(expect.arrayContaining([
      { labels: { state: 'received' }, value: '2' }, { labels: { state: 'failed' }, value: '1' }]))
    expect(family('kiln_queue_length')?.metrics).toEqual([{ value: '3' }])
    expect(family('kiln_store_bytes')?.metrics).toEqual([{ value: '123456' }])
    expect(family('kiln_bytes_served_total')?.metrics).toEqual([{ labels: { peer: odd }, value: '1024' }])
    expect(family('kiln_bytes_fetched_total')?.metrics).toEqual([{ labels: { peer: '12D3KooWabc' }, value: '15' }])
    expect(family('kiln_build_duration_seconds')?.type).toBe('HISTOGRAM')
    expect(family('kiln_build_duration_seconds')?.help).toMatch(/Wall time of builds/)

    const lines = strictLines(text)
    const build = { platform: 'linux/amd64', outcome: 'succeeded' }
    expect(find(lines, 'kiln_build_duration_seconds_bucket', { ...build, le: '0.05' })).toBe(1)
    expect(find(lines, 'kiln_build_duration_seconds_bucket', { ...build, le: '1' })).toBe(2)
    expect(find(lines, 'kiln_build_duration_seconds_bucket', { ...build, le: '60' })).toBe(3)
    expect(find(lines, 'kiln_build_duration_seconds_bucket', { ...build, le: '+Inf' })).toBe(4)
    expect(find(lines, 'kiln_build_duration_seconds_count', build)).toBe(4)
    expect(find(lines, 'kiln_build_duration_seconds_sum', build)).toBeCloseTo(5040.72)
    // Buckets are cumulative, so never decrease.
    const buckets = lines.filter(l => l.name === 'kiln_build_duration_seconds_bucket').map(l => l.value)
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b))
    expect(find(lines, 'kiln_bytes_served_total', { peer: odd })).toBe(1024)
    // Every family has exactly one HELP and one TYPE line.
    for (const f of families) expect(text.split('\n').filter(l => l.startsWith(`# TYPE ${f.name} `))).toHaveLength(1)

    expect((await fetch(server.url.replace('/metrics', '/other'))).status).toBe(404)
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405)
  })

  it('the strict line check refuses broken lines (the parser is lenient), so the test above can fail', () => {
    for (const bad of ['x{a="1} 2', 'x{a="1"}', 'x{a="q"q"} 1', '1x 2', 'x 1 2 3', '# TYPE x countr']) {
      expect(() => strictLines(`${bad}\n`), bad).toThrow()
    }
    expect(strictLines('# TYPE x counter\nx{a="1",b="\\"q"} 2\nx +Inf\n')).toHaveLength(2)
  })

  it('escapes HELP text and label values', async () => {
    const r = createRegistry()
    r.define({ name: 'x_total', type: 'counter', help: 'line one\nback\\slash', labels: ['l'] })
    r.inc('x_total', { l: 'a"b\\c\nd' })
    const text = await r.render()
    expect(text).toBe('# HELP x_total line one\\nback\\\\slash\n# TYPE x_total counter\nx_total{l="a\\"b\\\\c\\nd"} 1\n')
    expect(parsePrometheusTextFormat(text)[0]?.metrics[0]?.labels).toEqual({ l: 'a"b\\c\nd' })
  })

  it('refuses bad names, wrong labels, negative increments and conflicting definitions', () => {
    const r = createRegistry()
    expect(() => { r.define({ name: '1bad', type: 'counter', help: '' }) }).toThrow(expect.objectContaining({ name: 'InvalidMetricNameError' }))
    expect(() => { r.define({ name: 'h', type: 'histogram', help: '', labels: ['le'] }) }).toThrow(expect.objectContaining({ name: 'MetricDefinitionError' }))
    r.define({ name: 'c', type: 'counter', help: 'h', labels: ['a'] })
    r.define({ name: 'c', type: 'counter', help: 'h', labels: ['a'] })
    expect(() => { r.define({ name: 'c', type: 'gauge', help: 'h' }) }).toThrow(expect.objectContaining({ name: 'MetricDefinitionError' }))
    expect(() => { r.inc('c', {}) }).toThrow(expect.objectContaining({ name: 'MetricDefinitionError' }))
    expect(() => { r.inc('c', { a: 'x', b: 'y' }) }).toThrow(expect.objectContaining({ name: 'MetricDefinitionError' }))
    expect(() => { r.inc('c', { a: 'x' }, -1) }).toThrow(expect.objectContaining({ name: 'MetricDefinitionError' }))
    expect(() => { r.observe('c', { a: 'x' }, 1) }).toThrow(expect.objectContaining({ name: 'MetricDefinitionError' }))
  })

  it('folds label combinations past the series cap into one "other" series', async () => {
    const metrics = createMetrics()
    for (let i = 0; i < 1005; i++) metrics.inc('kiln_bytes_fetched_total', { peer: `p${i}` }, 1)
    const lines = strictLines(await metrics.render()).filter(l => l.name === 'kiln_bytes_fetched_total')
    expect(lines).toHaveLength(1001)
    expect(find(lines, 'kiln_bytes_fetched_total', { peer: 'p999' })).toBe(1)
    expect(find(lines, 'kiln_bytes_fetched_total', { peer: 'other' })).toBe(5)
  })

  it('is a no-op, with no endpoint, when metrics.listen is not configured', async () => {
    const off = await startMetrics({})
    expect(off.server).toBeUndefined()
    off.metrics.inc('kiln_jobs_total', { state: 'received' })
    expect(await off.metrics.render()).toBe('')
    const on = await startMetrics({ listen: '127.0.0.1:0' })
    server = on.server
    on.metrics.set('kiln_store_quota_bytes', {}, 42)
    expect(await (await fetch(on.server?.url as string)).text()).toContain('\nkiln_store_quota_bytes 42\n')
  })

  it('tells a malformed address (a usage error) from an address it cannot listen on', async () => {
    const bad = await startMetrics({ listen: 'nonsense' }).then(() => undefined, (e: unknown) => e)
    expect(isErrorOf(bad, MetricsAddressError)).toBe(true)
    expect(isErrorOf(bad, MetricsListenError)).toBe(true)
    const first = await startMetrics({ listen: '127.0.0.1:0' })
    try {
      const port = new URL(first.server?.url as string).port
      const busy = await startMetrics({ listen: `127.0.0.1:${port}` }).then(async r => { await r.close(); return undefined }, (e: unknown) => e)
      expect(isErrorOf(busy, MetricsListenError)).toBe(true)
      expect(isErrorOf(busy, MetricsAddressError)).toBe(false)
    } finally {
      await first.close()
    }
  })

  it('a collect hook that hangs or throws does not break the scrape', async () => {
    const metrics = createMetrics()
    metrics.onCollect(async () => { throw new Error('boom') })
    metrics.set('kiln_queue_length', {}, 1)
    expect(await metrics.render()).toContain('kiln_queue_length 1')
  })
})
