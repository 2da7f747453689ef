import type { Frontend } from './ir.ts'

/** What a local path named by Apptainer `Bootstrap: localimage` holds, as the caller found it. */
export type LocalImageKind = 'oci-layout' | 'sif' | 'sandbox' | 'other' | 'missing'

export interface ParseOptions {
  /** Recipe file name, used in errors and for front-end detection; default 'Dockerfile' or 'Singularity.def'. */
  filename?: string
  /** Which front-end to use; default: detected from the file name, then the content. */
  frontend?: Frontend
  /** Build args overriding ARG defaults (Dockerfile) and %arguments (Apptainer). */
  buildArgs?: Record<string, string>
  /** Stage to output, by name or index; default the last stage. */
  target?: string
  /** Target platform, `os/arch[/variant]`; default DEFAULT_PLATFORM. */
  platform?: string
  /** Platform of the builder; default the target platform. */
  buildPlatform?: string
  /**
   * Apptainer: leave `%test` out of the plan (`kiln build --notest`).
   * Default false: each stage's %test runs as a check at its end.
   */
  skipTest?: boolean
  /**
   * Environment of a base image (its config's Env), when the caller knows it:
   * lets `ENV PATH=/opt/bin:$PATH` see the base's PATH as BuildKit does
   * (runRecipe in src/builder resolves the bases and parses again with it).
   * Unknown bases expand to an empty environment but for PATH, the default.
   */
  baseEnv?: (ref: string) => Record<string, string> | undefined
  /**
   * What a `Bootstrap: localimage` path is. Without it the front-end guesses
   * from the name (.sif/.simg/.img are SIF images, anything else an OCI layout).
   */
  localImageKind?: (path: string) => LocalImageKind
}
