/**
 * The CLI's one table from error classes to exit codes (docs/cli.md, "Exit
 * codes"): an error a command lets escape ends `kiln` with the code of its
 * class's row, or of its nearest base class's row (every RecipeError
 * subclass is a usage error), and the row's hint, if any, is printed under
 * the message; an error that carries its own `hint` (src/node's, which
 * know the setting or flag at fault) shows that one instead. Anything not
 * listed exits EXIT.failure. Rows are matched by
 * class name (src/util/error-class.ts), so errors from a second copy of a
 * module still match. A test pins the table; change it only with that test.
 *
 * main.ts loads this file only when a command fails: it names classes of
 * every module and of libp2p, and `kiln --help` should load none of them.
 * The kiln classes come from the modules' errors.ts files, which import
 * nothing.
 */
import { TimeoutError } from '@libp2p/interface'
import { BaseImageError, CopySourceError, NetworkNotAllowedError, SandboxUnavailableError, SecretNotFoundError, StepFailedError, UnknownOwnerError, UnsupportedStepError } from '../builder/errors.ts'
import { IgnorePatternError } from '../builder/context/errors.ts'
import { ConfigError } from '../config/errors.ts'
import { DigestMismatchError, InvalidDigestError, InvalidPinTargetError, NotFoundError, SizeMismatchError } from '../content/errors.ts'
import { DataDirError } from '../doctor/errors.ts'
import { MetricsAddressError } from '../metrics/errors.ts'
import { ListenError, NoPeerReachableError, NodeSettingError } from '../node/errors.ts'
import { ExportUnsupportedError, ExporterUnavailableError, OutputSpecInvalidError } from '../export/errors.ts'
import { ArchiveInvalidError, BlobMissingError, ConfigInvalidError, HardlinkTargetError, ImageNotFoundError, LayerCompressionError, LayoutInvalidError, ManifestInvalidError, ManifestTooLargeError, PlatformInvalidError, PlatformNotFoundError, ReferenceInvalidError, SymlinkEscapeError, TarHeaderTooLargeError, TarInvalidError, UnsafePathError } from '../oci/errors.ts'
import { RecipeError } from '../recipe/errors.ts'
import { BuildError, BuilderLostError, JobInvalidError, NoOffersError, ReproducibilityError, ResultInvalidError } from '../requester/errors.ts'
import { BlobVerificationError, NoProvidersError } from '../transfer/errors.ts'
import { BadSignatureError, EnvelopeInvalidError, ExpiredError, KeyFileError, NotYetValidError, PolicyFileError, ReplayError, UnknownVersionError, WrongTypeError } from '../trust/errors.ts'
import { lookupErrorClass } from '../util/error-class.ts'
import type { ErrorClass } from '../util/error-class.ts'
import { EXIT } from './exit-codes.ts'
import type { ExitCode } from './exit-codes.ts'

/** How `kiln` ends on an error: its exit code and what the user can do about it. */
export interface ErrorExit {
  code: ExitCode
  hint?: string
}

export const ERROR_EXITS: ReadonlyArray<readonly [ErrorClass, ErrorExit]> = [
  // Bad command line, config or input file.
  [ConfigError, { code: EXIT.usage }],
  [DataDirError, { code: EXIT.usage }],
  [KeyFileError, { code: EXIT.usage }],
  [PolicyFileError, { code: EXIT.usage }],
  [InvalidDigestError, { code: EXIT.usage }],
  [InvalidPinTargetError, { code: EXIT.usage }],
  [IgnorePatternError, { code: EXIT.usage }],
  [RecipeError, { code: EXIT.usage }],
  [JobInvalidError, { code: EXIT.usage }],
  [LayoutInvalidError, { code: EXIT.usage }],
  [ArchiveInvalidError, { code: EXIT.usage }],
  [ReferenceInvalidError, { code: EXIT.usage }],
  [PlatformInvalidError, { code: EXIT.usage }],
  [CopySourceError, { code: EXIT.usage, hint: 'COPY sources are paths inside the build context (the CONTEXT argument)' }],
  [UnsupportedStepError, { code: EXIT.usage }],
  [SecretNotFoundError, { code: EXIT.usage, hint: 'kiln build --secret id=ID,src=FILE (or env=VARIABLE) gives a RUN --mount=type=secret its value' }],
  [UnknownOwnerError, { code: EXIT.usage, hint: '--chown names are looked up in the stage\'s /etc/passwd and /etc/group; numbers are used as given' }],
  [NetworkNotAllowedError, { code: EXIT.usage, hint: 'ADD <url> and ADD <git> fetch from the network: kiln build --network=default allows it' }],
  [OutputSpecInvalidError, { code: EXIT.usage, hint: 'docs/exporters.md lists the output types and their keys' }],
  [ExporterUnavailableError, { code: EXIT.usage }],
  [ExportUnsupportedError, { code: EXIT.usage }],
  [NodeSettingError, { code: EXIT.usage }],
  [MetricsAddressError, { code: EXIT.usage, hint: 'give --metrics-listen HOST:PORT with a free port, e.g. 127.0.0.1:9464' }],
  // What was asked for does not exist.
  [NotFoundError, { code: EXIT.notFound }],
  [PlatformNotFoundError, { code: EXIT.notFound }],
  [BlobMissingError, { code: EXIT.notFound }],
  [ImageNotFoundError, { code: EXIT.notFound }],
  [BaseImageError, { code: EXIT.notFound }],
  // A digest, signature or trust check failed.
  [DigestMismatchError, { code: EXIT.verification }],
  [SizeMismatchError, { code: EXIT.verification }],
  [BlobVerificationError, { code: EXIT.verification }],
  [BadSignatureError, { code: EXIT.verification }],
  [ExpiredError, { code: EXIT.verification }],
  [NotYetValidError, { code: EXIT.verification }],
  [ReplayError, { code: EXIT.verification }],
  [WrongTypeError, { code: EXIT.verification }],
  [UnknownVersionError, { code: EXIT.verification }],
  [EnvelopeInvalidError, { code: EXIT.verification }],
  [ReproducibilityError, { code: EXIT.verification }],
  [ResultInvalidError, { code: EXIT.verification }],
  [ManifestInvalidError, { code: EXIT.verification }],
  [ManifestTooLargeError, { code: EXIT.verification }],
  [ConfigInvalidError, { code: EXIT.verification }],
  [SymlinkEscapeError, { code: EXIT.verification }],
  [HardlinkTargetError, { code: EXIT.verification }],
  [TarHeaderTooLargeError, { code: EXIT.verification }],
  [TarInvalidError, { code: EXIT.verification }],
  [LayerCompressionError, { code: EXIT.verification }],
  [UnsafePathError, { code: EXIT.verification }],
  // A build step failed.
  [StepFailedError, { code: EXIT.buildFailed }],
  [BuildError, { code: EXIT.buildFailed, hint: 'kiln jobs logs ID shows the build output' }],
  // The network or a peer could not be reached in time.
  [NoOffersError, { code: EXIT.network, hint: 'no trusted agent offered: check `kiln peers --platform P`, and that your trust policy names their root (kiln trust ls)' }],
  [BuilderLostError, { code: EXIT.network, hint: 'kiln jobs resume ID follows the job again once the builder is back' }],
  [NoProvidersError, { code: EXIT.network }],
  [TimeoutError, { code: EXIT.network }],
  [ListenError, { code: EXIT.network }],
  [NoPeerReachableError, { code: EXIT.network, hint: 'pass --bootstrap /ip4/HOST/tcp/PORT/p2p/PEERID of a running agent' }],
  // Something else failed, and the user can look into it.
  [SandboxUnavailableError, { code: EXIT.failure, hint: 'run kiln doctor to see which sandbox drivers work on this node' }]
]

/** How kiln ends on this error: EXIT.failure and no hint unless the table has its class or the error has a hint. */
export function errorExit (err: unknown): ErrorExit {
  const row = lookupErrorClass(ERROR_EXITS, err) ?? { code: EXIT.failure }
  const own = typeof err === 'object' && err !== null && 'hint' in err && typeof err.hint === 'string' ? err.hint : undefined
  return own === undefined ? row : { ...row, hint: own }
}
