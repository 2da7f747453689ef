/**
 * The CLI's error table (src/cli/error-exits.ts), pinned: which class ends
 * kiln with which exit code. Changing a code changes what scripts see, so it
 * changes here too, on purpose.
 */
import { TimeoutError } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { ERROR_EXITS, errorExit } from '../../../src/cli/error-exits.ts'
import { EXIT } from '../../../src/cli/exit-codes.ts'
import { NotFoundError } from '../../../src/content/errors.ts'
import { RecipeError, RecipeSyntaxError } from '../../../src/recipe/errors.ts'
import { NoOffersError } from '../../../src/requester/errors.ts'
import { ListenError, NoPeerReachableError, NodeSettingError } from '../../../src/node/errors.ts'

const EXPECTED: Record<string, number> = {
  ConfigError: EXIT.usage,
  DataDirError: EXIT.usage,
  KeyFileError: EXIT.usage,
  PolicyFileError: EXIT.usage,
  InvalidDigestError: EXIT.usage,
  InvalidPinTargetError: EXIT.usage,
  IgnorePatternError: EXIT.usage,
  RecipeError: EXIT.usage,
  JobInvalidError: EXIT.usage,
  LayoutInvalidError: EXIT.usage,
  ArchiveInvalidError: EXIT.usage,
  ReferenceInvalidError: EXIT.usage,
  PlatformInvalidError: EXIT.usage,
  CopySourceError: EXIT.usage,
  UnsupportedStepError: EXIT.usage,
  SecretNotFoundError: EXIT.usage,
  UnknownOwnerError: EXIT.usage,
  NetworkNotAllowedError: EXIT.usage,
  OutputSpecInvalidError: EXIT.usage,
  ExporterUnavailableError: EXIT.usage,
  ExportUnsupportedError: EXIT.usage,
  NodeSettingError: EXIT.usage,
  MetricsAddressError: EXIT.usage,
  NotFoundError: EXIT.notFound,
  PlatformNotFoundError: EXIT.notFound,
  BlobMissingError: EXIT.notFound,
  ImageNotFoundError: EXIT.notFound,
  BaseImageError: EXIT.notFound,
  DigestMismatchError: EXIT.verification,
  SizeMismatchError: EXIT.verification,
  BlobVerificationError: EXIT.verification,
  BadSignatureError: EXIT.verification,
  ExpiredError: EXIT.verification,
  NotYetValidError: EXIT.verification,
  ReplayError: EXIT.verification,
  WrongTypeError: EXIT.verification,
  UnknownVersionError: EXIT.verification,
  EnvelopeInvalidError: EXIT.verification,
  ReproducibilityError: EXIT.verification,
  ResultInvalidError: EXIT.verification,
  ManifestInvalidError: EXIT.verification,
  ManifestTooLargeError: EXIT.verification,
  ConfigInvalidError: EXIT.verification,
  SymlinkEscapeError: EXIT.verification,
  HardlinkTargetError: EXIT.verification,
  TarHeaderTooLargeError: EXIT.verification,
  TarInvalidError: EXIT.verification,
  LayerCompressionError: EXIT.verification,
  UnsafePathError: EXIT.verification,
  StepFailedError: EXIT.buildFailed,
  BuildError: EXIT.buildFailed,
  NoOffersError: EXIT.network,
  BuilderLostError: EXIT.network,
  NoProvidersError: EXIT.network,
  TimeoutError: EXIT.network,
  ListenError: EXIT.network,
  NoPeerReachableError: EXIT.network,
  SandboxUnavailableError: EXIT.failure
}

describe('CLI error table', () => {
  it('maps every class to the exit code scripts rely on', () => {
    expect(Object.fromEntries(ERROR_EXITS.map(([cls, exit]) => [cls.name, exit.code]))).toEqual(EXPECTED)
  })

  it('has one row per class, and each class names its errors as it names itself', () => {
    const names = ERROR_EXITS.map(([cls]) => cls.name)
    expect(new Set(names).size).toBe(names.length)
    for (const [cls] of ERROR_EXITS) {
      // The row matches on the name an instance carries: the static name must be that name.
      const own = Object.getOwnPropertyDescriptor(cls, 'name')?.value as unknown
      expect(own, `${cls.name} declares static name`).toBe(cls.name)
      expect((Object.create(cls.prototype) as Error).constructor.name).toBe(cls.name)
    }
  })

  it('gives an error the code of its class, of its nearest listed base class, or failure', () => {
    expect(errorExit(new NotFoundError('gone')).code).toBe(EXIT.notFound)
    expect(errorExit(new RecipeSyntaxError({ file: 'Dockerfile', line: 3 }, 'bad')).code).toBe(EXIT.usage)
    expect(errorExit(new RecipeError({ file: 'Dockerfile', line: 3 }, 'bad')).code).toBe(EXIT.usage)
    expect(errorExit(new TimeoutError('slow')).code).toBe(EXIT.network)
    expect(errorExit(new Error('other'))).toEqual({ code: EXIT.failure })
    expect(errorExit('a string')).toEqual({ code: EXIT.failure })
  })

  it('matches an error from another copy of a module by its name', () => {
    // What a second copy of src/content throws: another class of the same name (its instances here keep Error's name).
    class CopiedNotFoundError extends Error { static override readonly name = 'NotFoundError' }
    const copy = new CopiedNotFoundError('gone')
    expect(copy instanceof NotFoundError).toBe(false)
    expect(errorExit(copy).code).toBe(EXIT.notFound)
    // An error rebuilt from a worker message: a plain Error that kept the name.
    const rebuilt = Object.assign(new Error('gone'), { name: 'NotFoundError' })
    expect(errorExit(rebuilt).code).toBe(EXIT.notFound)
  })

  it('carries the hint of the row, or the error\'s own when it has one', () => {
    expect(errorExit(new NoOffersError('nobody offered')).hint).toMatch(/kiln peers/)
    expect(errorExit(new NoPeerReachableError()).hint).toMatch(/--bootstrap/)
    expect(errorExit(new NodeSettingError('KILN_SANDBOX is proot: ...', { hint: 'set KILN_SANDBOX to auto' }))).toEqual({ code: EXIT.usage, hint: 'set KILN_SANDBOX to auto' })
    expect(errorExit(new ListenError('cannot start the node: port taken'))).toEqual({ code: EXIT.network })
  })

})
