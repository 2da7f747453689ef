/**
 * The bench's reference recipe (../shared/bench/Dockerfile.reference) with
 * its busybox base and its 50 MiB context, made in a dir for the cache
 * tests. The base is an OCI layout, named to the recipe through
 * `--build-arg BASE=oci:LAYOUT:base` (buildArgs).
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

export const BENCH = join(import.meta.dirname, '../../../../shared/bench')

export interface ReferenceRecipe {
  layout: string
  context: string
  /** The recipe's build arguments that point it at `layout`. */
  buildArgs: Record<string, string>
}

export function haveBench (): boolean {
  return existsSync(join(BENCH, 'Dockerfile.reference'))
}

export function makeReferenceRecipe (dir: string): ReferenceRecipe {
  const layout = join(dir, 'layout')
  const context = join(dir, 'ctx')
  execFileSync('sh', [join(BENCH, 'make-busybox-base.sh'), layout], { stdio: 'ignore' })
  execFileSync('sh', [join(BENCH, 'make-context.sh'), context], { stdio: 'ignore' })
  return { layout, context, buildArgs: { BASE: `oci:${layout}:base` } }
}
