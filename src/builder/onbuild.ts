/**
 * ONBUILD triggers of a stage's base (docs/building.md, "ONBUILD"): the
 * base config's `OnBuild` instructions, read by the recipe's front end and
 * run right after FROM, before the stage's own steps, as Docker does. They
 * are consumed: the stage's image does not carry them on (its own ONBUILD
 * steps start a new list). Apptainer has no triggers; its bases' are ignored.
 */
import { formatPlatform } from '../oci/index.ts'
import type { Platform } from '../oci/index.ts'
import { parseOnBuildTriggers } from '../recipe/index.ts'
import type { BuildPlan, Step } from '../recipe/ir.ts'
import { envMap } from './config-steps.ts'
import type { StageState } from './stage.ts'

export function takeTriggers (st: StageState, plan: BuildPlan, platform: Platform): Step[] {
  const triggers = st.config.OnBuild ?? []
  delete st.config.OnBuild
  if (triggers.length === 0 || plan.frontend !== 'dockerfile') return []
  const { base } = st.stage
  const name = base.kind === 'image' ? base.ref : base.kind === 'stage' ? `stage ${base.stage}` : 'scratch'
  return parseOnBuildTriggers(triggers, { base: name, env: envMap(st.config.Env), buildArgs: plan.args, platform: formatPlatform(platform) })
}
