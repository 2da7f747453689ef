/**
 * A registry of counters, gauges and histograms with labels, rendered in
 * Prometheus text format. Untyped by name: ./metrics.ts puts kiln's own
 * names and label sets on top of it.
 */
import { COLLECT_TIMEOUT_MS, DURATION_BUCKETS, MAX_SERIES_PER_METRIC, OVERFLOW_LABEL_VALUE } from './constants.ts'
import { MetricDefinitionError } from './errors.ts'
import { checkLabelName, checkMetricName, escapeHelp, formatValue, sampleLine } from './exposition.ts'

export type MetricType = 'counter' | 'gauge' | 'histogram'

export interface MetricDefinition {
  name: string
  help: string
  type: MetricType
  /** Label names, in the order they are written; default none. */
  labels?: readonly string[]
  /** Histogram upper bounds, ascending; +Inf is added. Default DURATION_BUCKETS. */
  buckets?: readonly number[]
}

export type Labels = Readonly<Record<string, string>>

/** Runs before each render, to set gauges that are cheaper to read than to track (store size). */
export type CollectHook = () => void | Promise<void>

export interface Registry {
  /** Adds a metric. Defining the same metric again is a no-op; a different definition under the same name throws MetricDefinitionError. */
  define: (definition: MetricDefinition) => void
  /** Adds value (default 1, never negative) to a counter or gauge. */
  inc: (name: string, labels?: Labels, value?: number) => void
  /** Sets a gauge. */
  set: (name: string, labels: Labels | undefined, value: number) => void
  /** Records one observation in a histogram. */
  observe: (name: string, labels: Labels | undefined, value: number) => void
  /** Registers a hook run before each render; returns a function that removes it. */
  onCollect: (hook: CollectHook) => () => void
  /** Runs the hooks (a failing hook is skipped), then writes every metric, in definition order. */
  render: () => Promise<string>
}

interface HistogramValue { buckets: number[], sum: number, count: number }

interface Family {
  def: Required<MetricDefinition>
  /** Label values in definition order -> value. Keyed by JSON of the values. */
  series: Map<string, { values: string[], value: number | HistogramValue }>
}

function sameDefinition (a: Required<MetricDefinition>, b: Required<MetricDefinition>): boolean {
  return a.type === b.type && a.help === b.help && a.labels.join() === b.labels.join() && a.buckets.join() === b.buckets.join()
}

function normalise (def: MetricDefinition): Required<MetricDefinition> {
  checkMetricName(def.name)
  const labels = def.labels ?? []
  for (const l of labels) {
    checkLabelName(l)
    if (def.type === 'histogram' && l === 'le') throw new MetricDefinitionError(`histogram ${def.name} cannot have a label named le`)
  }
  if (new Set(labels).size !== labels.length) throw new MetricDefinitionError(`metric ${def.name} names a label twice`)
  const buckets = def.type === 'histogram' ? [...(def.buckets ?? DURATION_BUCKETS)] : []
  for (let i = 1; i < buckets.length; i++) {
    if (!((buckets[i] as number) > (buckets[i - 1] as number))) throw new MetricDefinitionError(`histogram ${def.name}: buckets must be ascending`)
  }
  if (buckets.some(b => !Number.isFinite(b))) throw new MetricDefinitionError(`histogram ${def.name}: buckets must be finite (+Inf is implied)`)
  return { name: def.name, help: def.help, type: def.type, labels, buckets }
}

/** A hook that hangs (a store on a stuck filesystem) must not hang the scrape. */
async function withTimeout (hook: CollectHook, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([hook(), new Promise<void>(resolve => { timer = setTimeout(resolve, ms); timer.unref() })])
  } finally {
    clearTimeout(timer)
  }
}

export function createRegistry (): Registry {
  const families = new Map<string, Family>()
  const hooks = new Set<CollectHook>()

  const family = (name: string, type: MetricType): Family => {
    const f = families.get(name)
    if (f === undefined) throw new MetricDefinitionError(`metric ${name} is not defined`)
    if (f.def.type !== type && !(type === 'counter' && f.def.type === 'gauge')) throw new MetricDefinitionError(`metric ${name} is a ${f.def.type}, not a ${type}`)
    return f
  }

  const seriesFor = (f: Family, labels: Labels | undefined, empty: () => number | HistogramValue): { values: string[], value: number | HistogramValue } => {
    const given = labels ?? {}
    for (const k of Object.keys(given)) if (!f.def.labels.includes(k)) throw new MetricDefinitionError(`metric ${f.def.name} has no label ${k}`)
    let values = f.def.labels.map(l => {
      const v = given[l]
      if (v === undefined) throw new MetricDefinitionError(`metric ${f.def.name} needs label ${l}`)
      return v
    })
    let key = JSON.stringify(values)
    if (!f.series.has(key) && f.series.size >= MAX_SERIES_PER_METRIC) {
      values = f.def.labels.map(() => OVERFLOW_LABEL_VALUE)
      key = JSON.stringify(values)
    }
    let s = f.series.get(key)
    if (s === undefined) {
      s = { values, value: empty() }
      f.series.set(key, s)
    }
    return s
  }

  const renderFamily = (f: Family, lines: string[]): void => {
    const { name, help, type, labels, buckets } = f.def
    lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`)
    for (const s of f.series.values()) {
      const pairs = labels.map((l, i) => [l, s.values[i] as string] as const)
      if (typeof s.value === 'number') { lines.push(sampleLine(name, pairs, s.value)); continue }
      const h = s.value
      buckets.forEach((b, i) => { lines.push(sampleLine(`${name}_bucket`, [...pairs, ['le', formatValue(b)]], h.buckets[i] as number)) })
      lines.push(sampleLine(`${name}_bucket`, [...pairs, ['le', '+Inf']], h.count))
      lines.push(sampleLine(`${name}_sum`, pairs, h.sum))
      lines.push(sampleLine(`${name}_count`, pairs, h.count))
    }
  }

  return {
    define: (definition) => {
      const def = normalise(definition)
      const existing = families.get(def.name)
      if (existing !== undefined) {
        if (!sameDefinition(existing.def, def)) throw new MetricDefinitionError(`metric ${def.name} is already defined differently`)
        return
      }
      families.set(def.name, { def, series: new Map() })
    },
    inc: (name, labels, value = 1) => {
      if (!(value >= 0)) throw new MetricDefinitionError(`metric ${name}: cannot add ${value}; counters only go up`)
      const s = seriesFor(family(name, 'counter'), labels, () => 0)
      s.value = (s.value as number) + value
    },
    set: (name, labels, value) => {
      seriesFor(family(name, 'gauge'), labels, () => 0).value = value
    },
    observe: (name, labels, value) => {
      const f = family(name, 'histogram')
      const h = seriesFor(f, labels, () => ({ buckets: f.def.buckets.map(() => 0), sum: 0, count: 0 })).value as HistogramValue
      // Buckets are cumulative: an observation counts in every bucket whose bound it does not exceed.
      f.def.buckets.forEach((b, i) => { if (value <= b) h.buckets[i] = (h.buckets[i] as number) + 1 })
      h.sum += value
      h.count++
    },
    onCollect: (hook) => {
      hooks.add(hook)
      return () => { hooks.delete(hook) }
    },
    render: async () => {
      await Promise.allSettled([...hooks].map(async hook => { await withTimeout(hook, COLLECT_TIMEOUT_MS) }))
      const lines: string[] = []
      for (const f of families.values()) renderFamily(f, lines)
      return lines.length === 0 ? '' : `${lines.join('\n')}\n`
    }
  }
}
