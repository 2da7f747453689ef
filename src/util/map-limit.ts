/**
 * Runs `fn` over `items` with at most `n` calls in flight, results in the
 * items' order. A rejection rejects the whole (calls already started run on).
 */
export async function mapLimit<T, R> (items: readonly T[], n: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(Math.max(1, n), items.length) }, async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i] as T, i) }
  }))
  return out
}
