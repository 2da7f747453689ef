/**
 * Fixed parameters of the registry client. Section numbers refer to the OCI
 * distribution spec v1.1.
 */
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../oci/media-types.ts'

/** Every manifest type kiln reads, for the Accept header of manifest GETs (§"Pulling manifests"). */
export const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(', ')

/** Blobs larger than this are pushed in chunks (PATCH with Content-Range) rather than one PUT. */
export const DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024

/** Token lifetime assumed when a token response gives none (registry token spec: 60 s). */
export const DEFAULT_TOKEN_TTL_SECONDS = 60

/** Tokens are renewed this long before they expire. */
export const TOKEN_RENEW_MARGIN_SECONDS = 10

/** Blobs fetched at once by pullImage. */
export const PULL_CONCURRENCY = 3

/** Where `docker.io` names are served from. */
export const DOCKER_HUB_HOST = 'registry-1.docker.io'

/** Largest token or error response body read. */
export const MAX_SMALL_RESPONSE = 1024 * 1024

/** Timeout of requests without a body to stream (ping, manifests, tokens). */
export const REQUEST_TIMEOUT_MS = 60_000
