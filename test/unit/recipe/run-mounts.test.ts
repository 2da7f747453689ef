/**
 * `RUN --mount` (src/recipe/dockerfile/mount.ts): each type's options and
 * defaults as BuildKit has them, and errors that name the file and line.
 */
import { describe, expect, it } from 'vitest'
import { parseDockerfile } from '../../../src/recipe/index.ts'
import type { RunMount, RunStep } from '../../../src/recipe/index.ts'

function mounts (text: string): RunMount[] | undefined {
  const plan = parseDockerfile(text, { filename: 'Dockerfile' })
  const step = plan.stages.at(-1)?.steps.find((s): s is RunStep => s.op === 'run')
  return step?.mounts
}

function refused (text: string, name: string, pattern: RegExp, line = 2): void {
  expect(() => parseDockerfile(text, { filename: 'Dockerfile' }))
    .toThrow(expect.objectContaining({ name, line, message: expect.stringMatching(pattern) }))
}

describe('RUN --mount', () => {
  it('reads cache mounts with their defaults: id is the target, shared, 0755, root-owned', () => {
    expect(mounts('FROM a\nRUN --mount=type=cache,target=/root/.cache make\n')).toEqual([
      { type: 'cache', target: '/root/.cache', id: '/root/.cache', sharing: 'shared', readOnly: false, mode: 0o755, uid: 0, gid: 0 }
    ])
    expect(mounts('FROM a\nRUN --mount=type=cache,id=pip,dst=/c,sharing=locked,mode=0700,uid=1000,gid=100,ro make\n')).toEqual([
      { type: 'cache', target: '/c', id: 'pip', sharing: 'locked', readOnly: true, mode: 0o700, uid: 1000, gid: 100 }
    ])
  })

  it('reads bind mounts from the context (the default type), a stage and an image, several per RUN', () => {
    expect(mounts('FROM a AS build\nRUN true\nFROM a\nRUN --mount=target=/src --mount=type=bind,from=build,source=/out,target=/o,rw --mount=type=bind,from=docker.io/library/alpine:3,src=/etc,target=/e make\n')).toEqual([
      { type: 'bind', target: '/src', from: { kind: 'context' }, source: '/', readWrite: false },
      { type: 'bind', target: '/o', from: { kind: 'stage', stage: 0 }, source: '/out', readWrite: true },
      { type: 'bind', target: '/e', from: { kind: 'image', ref: 'docker.io/library/alpine:3' }, source: '/etc', readWrite: false }
    ])
  })

  it('keeps a stage a bind mount reads when pruning for the target', () => {
    const plan = parseDockerfile('FROM a AS tools\nRUN true\nFROM a\nRUN --mount=from=tools,target=/t make\n', { filename: 'Dockerfile' })
    expect(plan.stages.map(s => s.index)).toEqual([0, 1])
  })

  it('reads tmpfs sizes and secrets with their defaults', () => {
    expect(mounts('FROM a\nRUN --mount=type=tmpfs,target=/tmp,size=64m make\n')).toEqual([{ type: 'tmpfs', target: '/tmp', size: 64 * 1024 * 1024 }])
    expect(mounts('FROM a\nRUN --mount=type=secret,id=token make\n')).toEqual([{ type: 'secret', id: 'token', required: false, mode: 0o400, uid: 0, gid: 0 }])
    expect(mounts('FROM a\nRUN --mount=type=secret,id=t,env=TOKEN,required,target=/run/t,mode=0440 make\n')).toEqual([
      { type: 'secret', id: 't', env: 'TOKEN', target: '/run/t', required: true, mode: 0o440, uid: 0, gid: 0 }
    ])
    expect(mounts('FROM a\nRUN --mount=type=secret,target=/run/secrets/npmrc make\n')?.[0]).toMatchObject({ id: 'npmrc' })
  })

  it('substitutes build args in mount options', () => {
    expect(mounts('FROM a\nARG DIR=/cache\nRUN --mount=type=cache,target=$DIR make\n')?.[0]).toMatchObject({ target: '/cache', id: '/cache' })
  })

  it('puts the mount in the canonical text (the step key) but never a secret value', () => {
    const plan = parseDockerfile('FROM a\nRUN --mount=type=secret,id=token make\n', { filename: 'Dockerfile' })
    expect(plan.stages[0]?.steps[0]?.canonical).toContain('"type":"secret"')
  })

  it('refuses what it cannot honour, with file, line and a hint', () => {
    refused('FROM a\nRUN --mount=type=ssh git clone x\n', 'UnsupportedFeatureError', /Dockerfile:2:1: RUN --mount=type=ssh is not supported \(kiln forwards no SSH agent/)
    refused('FROM a\nRUN --mount=type=cache,target=/c,from=x make\n', 'UnsupportedFeatureError', /cache with from= or source=/)
    refused('FROM a\nRUN --mount=type=nfs,target=/x make\n', 'RecipeSyntaxError', /unknown mount type 'nfs' \(use type=bind, cache, tmpfs or secret\)/)
    refused('FROM a\nRUN --mount=type=tmpfs,target=/x,id=y make\n', 'RecipeSyntaxError', /unknown option 'id' for a tmpfs mount \(a tmpfs mount takes target, size\)/)
    refused('FROM a\nRUN --mount=type=cache make\n', 'RecipeSyntaxError', /a cache mount needs target=PATH/)
    refused('FROM a\nRUN --mount=type=cache,target=rel make\n', 'RecipeSyntaxError', /mount target 'rel' is not an absolute path/)
    refused('FROM a\nRUN --mount=type=cache,target=/c,sharing=some make\n', 'RecipeSyntaxError', /sharing=some: expected shared, private or locked/)
    refused('FROM a\nRUN --mount=type=cache,target=/c,mode=999 make\n', 'RecipeSyntaxError', /mode=999: expected an octal mode/)
    refused('FROM a\nRUN --mount=type=tmpfs,target=/t,size=lots make\n', 'RecipeSyntaxError', /size=lots: expected bytes/)
    refused('FROM a\nRUN --mount=type=secret,env=1X make\n', 'RecipeSyntaxError', /a secret mount needs id=NAME/)
    refused('FROM a\nRUN --mount=type=secret,id=a,env=1X make\n', 'RecipeSyntaxError', /env=1X: not a variable name/)
    refused('FROM a\nRUN --mount=from=nosuch,target=/x make\n', 'UnknownStageError', /no stage named 'nosuch'/)
    refused('FROM a\nRUN --mount=target=/x,ro,rw make\n', 'RecipeSyntaxError', /either ro or rw/)
    refused('FROM a\nRUN --mount= make\n', 'RecipeSyntaxError', /missing a value on flag --mount/)
  })
})
