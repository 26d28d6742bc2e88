import { MeshworkError, type MeshworkErrorOptions } from '../core/errors.js'

/** Errors of the network port (both implementations raise the same codes). */
export class MeshError extends MeshworkError {
  override readonly name = 'MeshError'
}

/** Codes the mesh raises. */
export const meshErrorCodes = [
  'PEER_UNREACHABLE',
  'PROTOCOL_NOT_SUPPORTED',
  'REQUEST_TIMEOUT',
  'REQUEST_TOO_LARGE',
  'RESPONSE_TOO_LARGE',
  'REMOTE_ERROR',
  'PORT_CLOSED',
] as const

export type MeshErrorCode = (typeof meshErrorCodes)[number]

/** Builds a {@link MeshError}. */
export function meshError(code: MeshErrorCode, message: string, options?: MeshworkErrorOptions): MeshError {
  return new MeshError(code, message, options)
}
