const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 } as const

/** `30d`, `12h`, `90m`, `45s`, `500ms`, `2w`, `1y` or plain milliseconds, to milliseconds. */
export function parseDuration (text: string): number {
  const m = /^(\d{1,9})(ms|s|m|h|d|w|y)?$/.exec(text.trim())
  if (m === null) throw new RangeError(`invalid duration ${JSON.stringify(text)}: use e.g. 30d, 12h, 90m, 45s`)
  return Number(m[1]) * UNITS[(m[2] ?? 'ms') as keyof typeof UNITS]
}
