/**
 * `Bootstrap: debootstrap`: the headers `OSVersion` (the suite), `MirrorURL`
 * and `Include` become a DebootstrapBase (src/recipe/ir.ts). The builder
 * makes that base without privileges (src/builder/debootstrap.ts); here the
 * values are only checked, strictly, because they end up as arguments of a
 * program on the build host: a mirror is an http(s) URL, a suite and each
 * package a plain Debian name (apt patterns and paths to .deb files, which
 * the bootstrap tool would also accept, are refused).
 */
import { RecipeSyntaxError } from '../errors.ts'
import type { DebootstrapBase, SourceLoc } from '../ir.ts'

/** Header keys only a debootstrap stage has. */
export const DEBOOTSTRAP_HEADERS: readonly string[] = ['osversion', 'mirrorurl', 'include']

/** Debian policy 5.6.1 (package names), also fine for suites and codenames. */
const DEBIAN_NAME = /^[a-z0-9][a-z0-9+.-]*$/

export interface HeaderValue {
  value: string
  line: number
}

export function debootstrapBase (header: (key: string) => HeaderValue | undefined, loc: SourceLoc): DebootstrapBase {
  const at = (h: HeaderValue | undefined): SourceLoc => ({ file: loc.file, line: h?.line ?? loc.line })
  const suite = header('osversion')
  if (suite === undefined || suite.value === '') throw new RecipeSyntaxError(loc, 'Bootstrap: debootstrap needs an OSVersion: header', 'the suite or codename, e.g. OSVersion: bookworm')
  if (!DEBIAN_NAME.test(suite.value)) throw new RecipeSyntaxError(at(suite), `OSVersion: '${suite.value}' is not a suite name`, 'e.g. bookworm, stable, jammy')
  const mirror = header('mirrorurl')
  if (mirror === undefined || mirror.value === '') throw new RecipeSyntaxError(loc, 'Bootstrap: debootstrap needs a MirrorURL: header', 'e.g. MirrorURL: http://deb.debian.org/debian')
  let url: URL | undefined
  try { url = new URL(mirror.value) } catch { url = undefined }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || /\s/.test(mirror.value) || url.username !== '' || url.password !== '') {
    throw new RecipeSyntaxError(at(mirror), `MirrorURL: '${mirror.value}' is not an http(s) URL`, 'e.g. MirrorURL: http://deb.debian.org/debian')
  }
  const include = header('include')
  const packages: string[] = []
  for (const name of (include?.value ?? '').split(/[\s,]+/).filter(p => p !== '')) {
    if (!DEBIAN_NAME.test(name)) throw new RecipeSyntaxError(at(include), `Include: '${name}' is not a Debian package name`, 'list package names separated by spaces or commas; apt patterns and .deb paths are not accepted')
    if (!packages.includes(name)) packages.push(name)
  }
  return { kind: 'debootstrap', suite: suite.value, mirror: mirror.value.replace(/\/+$/, ''), include: packages }
}
