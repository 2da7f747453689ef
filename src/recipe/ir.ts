/**
 * The build plan IR: what both recipe front-ends (Dockerfile, Apptainer
 * definition) produce and what the builder consumes. Plain data, JSON-
 * serializable, no classes.
 *
 * Terms:
 * - plan: one recipe after parsing, substitution and target selection.
 * - stage: one base image plus the steps applied to it, in order. Stages a
 *   target does not need are pruned; `index` keeps the position they had in
 *   the recipe, so `{ kind: 'stage', stage: n }` names `stages.find(s => s.index === n)`.
 * - step: one instruction. `canonical` is a normalized text form of it after
 *   substitution (stable across whitespace, case and comment changes): the
 *   builder hashes it into the step cache key.
 *
 * Variables: the front-end has already substituted ARG/ENV (Dockerfile) or
 * `{{ var }}` (Apptainer) wherever the recipe language does so. RUN scripts
 * and CMD/ENTRYPOINT shell forms are left as written: the shell expands them
 * at run time, with the build args in scope passed as `RunStep.env`.
 */

export interface SourceLoc {
  /** Recipe file name as given by the caller (e.g. 'Dockerfile'). */
  file: string
  /** 1-based line of the instruction's first line. */
  line: number
  /** 1-based column, when known. */
  column?: number
}

/** Where a stage starts from. `ref` uses the containers-transports syntax (docs/images.md). */
export type BaseRef =
  | { kind: 'image', ref: string }
  | { kind: 'stage', stage: number }
  | { kind: 'scratch' }
  | DebootstrapBase

/**
 * A Debian (or derivative) root file system made from a package mirror, as
 * Apptainer's `Bootstrap: debootstrap` makes it: the `minbase` variant of
 * `suite` plus the `include` packages, for the build's platform. The front
 * end has checked every field: `mirror` is an http(s) URL, `suite` and
 * `include` are plain Debian names (no apt patterns, no file paths).
 */
export interface DebootstrapBase {
  kind: 'debootstrap'
  /** `OSVersion`: a suite or codename, e.g. 'bookworm', 'stable'. */
  suite: string
  /** `MirrorURL`, e.g. 'http://deb.debian.org/debian'. */
  mirror: string
  /** `Include`: package names, in the order written, without duplicates. */
  include: string[]
}

/** What a RUN executes. */
export type Command =
  /** argv executed directly (JSON form). */
  | { form: 'exec', argv: string[] }
  /** text handed to the step's `shell` as its last argument (`sh -c SCRIPT`). */
  | { form: 'shell', script: string }
  /**
   * A heredoc starting with `#!`: write `content` to a temporary file inside
   * the sandbox, make it executable and execute it (BuildKit semantics).
   */
  | { form: 'shebang', content: string }

export type CopySourceRef =
  /** A path (may contain globs) relative to the context or the `from` stage/image root. */
  | { kind: 'path', path: string }
  /** A file whose content is given inline (a heredoc); `name` is its file name. */
  | { kind: 'inline', name: string, content: string }
  /**
   * ADD of an http(s) URL: the builder downloads it (never unpacked).
   * `checksum` (`--checksum=sha256:...`) is the digest the bytes must have.
   */
  | { kind: 'url', url: string, checksum?: string }
  /**
   * ADD of a git repository, BuildKit's `URL#ref:subdir` syntax: `remote` is
   * the URL without the fragment, `ref` a branch, tag or commit (absent: the
   * remote's HEAD), `subdir` the directory of the tree to copy.
   */
  | { kind: 'git', remote: string, ref?: string, subdir?: string, keepGitDir: boolean }

export type CopyFrom =
  | { kind: 'context' }
  | { kind: 'stage', stage: number }
  | { kind: 'image', ref: string }

export interface KeyValue {
  key: string
  value: string
}

interface StepBase {
  source: SourceLoc
  canonical: string
}

export interface RunStep extends StepBase {
  op: 'run'
  command: Command
  /** Shell in effect (from SHELL; default ['/bin/sh', '-c']); used for the 'shell' form. */
  shell: string[]
  /** Build-time environment: build args in scope. Not persisted into the image. */
  env: Record<string, string>
  /**
   * What the step said about the network: `--network=none` cuts it off,
   * `default` (also written `host`: kiln's network is the node's) or absent
   * gives it the build's network, which is none unless the build says
   * otherwise (docs/building.md).
   */
  network?: 'none' | 'default'
  /** `RUN --mount=...` in the order written (docs/building.md, "RUN mounts"). */
  mounts?: RunMount[]
  /**
   * A check of the stage as built so far (Apptainer `%test`): its changes
   * to the file system are thrown away, it adds no layer and no history and
   * is never taken from the step cache; a non-zero exit fails the build.
   */
  check?: boolean
}

/**
 * A BuildKit RUN mount (https://docs.docker.com/reference/dockerfile/#run---mount).
 * `target` is an absolute path inside the step's root. None of them is ever
 * part of a layer; a secret's value is never part of the plan.
 */
export type RunMount =
  /**
   * A directory kept on the node between builds under `id` (default: the
   * target): `shared` by concurrent steps, `private` (a fresh dir for a step
   * while another holds it) or `locked` (one step at a time). `mode` (octal
   * number), `uid`, `gid` are those of the dir when it is created.
   */
  | { type: 'cache', target: string, id: string, sharing: 'shared' | 'private' | 'locked', readOnly: boolean, mode: number, uid: number, gid: number }
  /** `source` (a path, default the root) of the context, a stage or an image, read-only unless `readWrite` (whose writes are discarded). */
  | { type: 'bind', target: string, from: CopyFrom, source: string, readWrite: boolean }
  /** An empty tmpfs, `size` bytes at most when given. */
  | { type: 'tmpfs', target: string, size?: number }
  /**
   * The build's secret `id` (`kiln build --secret`) as a file at `target`
   * (default /run/secrets/<id>) and/or in the environment variable `env`;
   * a missing secret fails the step when `required`, else the mount is left out.
   */
  | { type: 'secret', id: string, target?: string, env?: string, required: boolean, mode: number, uid: number, gid: number }

export interface CopyStep extends StepBase {
  op: 'copy'
  /** true for ADD: local tar archives among the sources are extracted. */
  add: boolean
  from: CopyFrom
  sources: CopySourceRef[]
  /** Destination; a trailing '/' means a directory. Relative to the working directory. */
  dest: string
  chown?: string
  /** Octal mode as written, e.g. '755'. */
  chmod?: string
  link: boolean
  /** COPY --parents: a source keeps its parent dirs (those after a `/./` in it, if any). */
  parents?: boolean
  /** COPY/ADD --exclude: .dockerignore patterns, matched against source-relative paths, left out. */
  exclude?: string[]
  /**
   * Absent: Dockerfile COPY rules (a directory source copies its contents).
   * 'cp': Apptainer %files rules, those of `cp -rL src dest`: a directory
   * copied to an existing directory lands inside it under its own name, and
   * symlinks among the sources are followed.
   */
  semantics?: 'cp'
}

export interface EnvStep extends StepBase { op: 'env', vars: KeyValue[] }
export interface ArgStep extends StepBase { op: 'arg', name: string, value?: string }
/** `path` as written after substitution; relative paths are relative to the previous working directory. */
export interface WorkdirStep extends StepBase { op: 'workdir', path: string }
export interface UserStep extends StepBase { op: 'user', user: string }
export interface LabelStep extends StepBase { op: 'label', labels: KeyValue[] }
/** Shell form already wrapped: argv = [...shell, script]. */
export interface EntrypointStep extends StepBase { op: 'entrypoint', argv: string[], form: 'exec' | 'shell' }
export interface CmdStep extends StepBase { op: 'cmd', argv: string[], form: 'exec' | 'shell' }
/** Ports as written, e.g. '80/tcp', '53/udp', '8080'. */
export interface ExposeStep extends StepBase { op: 'expose', ports: string[] }
export interface VolumeStep extends StepBase { op: 'volume', paths: string[] }
export interface StopSignalStep extends StepBase { op: 'stopsignal', signal: string }
export interface ShellStep extends StepBase { op: 'shell', argv: string[] }
/**
 * ONBUILD: `trigger` (the instruction as written, not substituted) goes to
 * the image config's `OnBuild` list; a build whose base has triggers runs
 * them right after FROM (docs/building.md).
 */
export interface OnBuildStep extends StepBase { op: 'onbuild', trigger: string }

export interface HealthcheckStep extends StepBase {
  op: 'healthcheck'
  /** OCI/Docker form: ['NONE'] | ['CMD', ...argv] | ['CMD-SHELL', script]. */
  test: string[]
  /** Durations as written ('30s'). */
  interval?: string
  timeout?: string
  startPeriod?: string
  startInterval?: string
  retries?: number
}

/** A file written into the rootfs (Apptainer metadata: runscript, environment, labels.json...). */
export interface FileStep extends StepBase {
  op: 'file'
  /** Absolute path inside the image. */
  path: string
  content: string
  /** Numeric mode, e.g. 0o755. */
  mode: number
}

export type Step =
  | RunStep | CopyStep | EnvStep | ArgStep | WorkdirStep | UserStep | LabelStep
  | EntrypointStep | CmdStep | ExposeStep | VolumeStep | StopSignalStep
  | ShellStep | HealthcheckStep | FileStep | OnBuildStep

export type StepOp = Step['op']

export interface Stage {
  /** Name from `FROM ... AS name` / Apptainer `Stage:`. */
  name?: string
  /** Position in the recipe (0-based), kept after pruning. */
  index: number
  base: BaseRef
  /** Platform from `FROM --platform=`, after substitution. */
  platform?: string
  steps: Step[]
  source: SourceLoc
}

export type Frontend = 'dockerfile' | 'apptainer'

export interface BuildPlan {
  version: 1
  frontend: Frontend
  /** Stages needed by the target, in recipe order; the last one is the target. */
  stages: Stage[]
  /** `index` of the stage whose result is the output image. */
  target: number
  /** Global build args (Dockerfile ARGs before the first FROM, Apptainer %arguments) after overrides. */
  args: Record<string, string>
}
