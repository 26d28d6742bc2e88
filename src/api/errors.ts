import { MeshworkError, type MeshworkErrorOptions } from '../core/errors.js'

/** Codes of the HTTP API (docs/ERRORS.md, "HTTP API"). Bad parameters use core's `INVALID_ARGUMENT`. */
export const apiErrorCodes = [
  'API_ROUTE_NOT_FOUND',
  'API_NODE_NOT_FOUND',
  'API_EPOCH_NOT_FOUND',
  'API_PROPOSAL_NOT_FOUND',
  'API_TOO_MANY_STREAMS',
  'API_SOURCE_UNAVAILABLE',
] as const

export type ApiErrorCode = (typeof apiErrorCodes)[number]

/** An error the API answers with, one of {@link apiErrorCodes}. */
export class ApiError extends MeshworkError {
  override readonly name = 'ApiError'
  constructor(code: ApiErrorCode, message: string, options: MeshworkErrorOptions = {}) {
    super(code, message, options)
  }
}

/**
 * The HTTP status of every code the API answers with, in one table (as fastify's `lib/errors.js`
 * does): API codes, core's, and those that reach it from auditing epochs. A code not listed is 500.
 */
export const API_STATUS: Readonly<Record<string, number>> = Object.freeze({
  INVALID_ARGUMENT: 400,
  API_ROUTE_NOT_FOUND: 404,
  API_NODE_NOT_FOUND: 404,
  API_EPOCH_NOT_FOUND: 404,
  API_PROPOSAL_NOT_FOUND: 404,
  EPOCH_NOT_POSTED: 404,
  API_TOO_MANY_STREAMS: 503,
  API_SOURCE_UNAVAILABLE: 503,
  BUNDLE_UNAVAILABLE: 503,
  RPC_UNREACHABLE: 503,
  BUNDLE_INVALID: 502,
  INTERNAL: 500,
})

/** The status for `code` ({@link API_STATUS}, else 500). */
export function statusOf(code: string): number {
  return API_STATUS[code] ?? 500
}
