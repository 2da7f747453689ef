import { RecipeSyntaxError, UnsupportedFeatureError } from '../errors.ts'
import type { BaseRef, SourceLoc } from '../ir.ts'
import type { LocalImageKind, ParseOptions } from '../options.ts'
import { debootstrapBase } from './debootstrap.ts'
import type { HeaderValue } from './debootstrap.ts'

const UNSUPPORTED_BOOTSTRAP: Readonly<Record<string, string>> = {
  shub: 'Singularity Hub is retired (read-only since 2021, offline since): its images are gone; rebuild from the definition, or use Bootstrap: oras, library or docker',
  yum: 'kiln bootstraps only Debian-style systems from a mirror; start from the distribution\'s image instead: Bootstrap: docker with From: rockylinux:9, almalinux:9 or fedora:40',
  dnf: 'kiln bootstraps only Debian-style systems from a mirror; start from the distribution\'s image instead: Bootstrap: docker with From: fedora:40, rockylinux:9 or almalinux:9',
  zypper: 'kiln bootstraps only Debian-style systems from a mirror; start from the distribution\'s image instead: Bootstrap: docker with From: opensuse/leap:15.6 or opensuse/tumbleweed',
  arch: 'kiln bootstraps only Debian-style systems from a mirror; start from the distribution\'s image instead: Bootstrap: docker with From: archlinux',
  busybox: 'use Bootstrap: docker with From: busybox',
  'docker-daemon': 'kiln talks to no Docker daemon; export the image with docker save and use Bootstrap: docker-archive'
}

/**
 * A Docker Hub style name as containers/image normalizes it:
 * `ubuntu` -> `docker.io/library/ubuntu:latest`, `me/app:1` -> `docker.io/me/app:1`.
 */
export function normalizeDockerName (name: string): string {
  const slash = name.indexOf('/')
  const first = slash < 0 ? '' : name.slice(0, slash)
  const hasRegistry = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')
  let full = hasRegistry ? name : slash < 0 ? `docker.io/library/${name}` : `docker.io/${name}`
  const lastPart = full.slice(full.lastIndexOf('/') + 1)
  if (!lastPart.includes(':') && !lastPart.includes('@')) full += ':latest'
  return full
}

/** A SIF file (`sif:PATH`, read by src/sif) or an OCI layout (`oci:PATH`). */
function localImage (path: string, kind: LocalImageKind | undefined, loc: SourceLoc): BaseRef {
  const guessed = kind ?? (/\.(sif|simg|img|sqsh|squashfs)$/i.test(path) ? 'sif' : 'oci-layout')
  if (guessed === 'oci-layout') return { kind: 'image', ref: `oci:${path}` }
  if (guessed === 'sif') return { kind: 'image', ref: `sif:${path}` }
  const what = guessed === 'sandbox' ? 'a sandbox directory' : guessed === 'missing' ? 'missing' : 'neither a SIF image nor an OCI layout'
  throw new UnsupportedFeatureError(loc, `Bootstrap: localimage ${path} is ${what}`,
    'kiln reads SIF images and OCI image layout directories; make a SIF with apptainer build, or an OCI layout with skopeo copy')
}

/** `oras://HOST/REPO:TAG` (the SIF artifact of an OCI registry); a From without a tag means :latest. */
function orasRef (from: string): BaseRef {
  return { kind: 'image', ref: `oras://${normalizeDockerName(from.replace(/^oras:\/\//, ''))}` }
}

/** The base of a stage from its Bootstrap header and the headers that agent reads. */
export function baseRefOf (bootstrap: string, header: (key: string) => HeaderValue | undefined, loc: SourceLoc, options: ParseOptions): BaseRef {
  const agent = bootstrap.toLowerCase()
  if (agent === 'scratch') return { kind: 'scratch' }
  if (agent === 'debootstrap') return debootstrapBase(header, loc)
  const reason = UNSUPPORTED_BOOTSTRAP[agent]
  if (reason !== undefined) throw new UnsupportedFeatureError(loc, `Bootstrap: ${bootstrap} is not supported`, reason)
  const known = ['docker', 'oci', 'oci-archive', 'docker-archive', 'localimage', 'oras', 'library']
  if (!known.includes(agent)) throw new UnsupportedFeatureError(loc, `unknown bootstrap agent 'Bootstrap: ${bootstrap}'`, `supported: ${known.join(', ')}, debootstrap, scratch`)
  const from = header('from')?.value
  if (from === undefined || from === '') throw new RecipeSyntaxError(loc, `Bootstrap: ${bootstrap} needs a From: header`)
  switch (agent) {
    case 'docker': return { kind: 'image', ref: `docker://${normalizeDockerName(from.replace(/^docker:\/\//, ''))}` }
    case 'localimage': return localImage(from, options.localImageKind?.(from), loc)
    case 'oras': return orasRef(from)
    // Fetched from the configured library service (kiln.yaml build.libraryUrl) when the base is resolved.
    case 'library': return { kind: 'image', ref: `library://${from.replace(/^library:\/\//, '').replace(/^\/+/, '')}` }
    default: return { kind: 'image', ref: `${agent}:${from.replace(new RegExp(`^${agent}:`), '')}` }
  }
}
