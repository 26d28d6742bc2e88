import { MeshworkError, type MeshworkErrorOptions } from '../core/errors.js'

/** Codes of stored content (docs/ERRORS.md, "Storage"). */
export const storageErrorCodes = [
  'STORAGE_KEY_INVALID',
  'STORAGE_DATA_CORRUPT',
  'STORAGE_UNAVAILABLE',
  'STORAGE_MANIFEST_INVALID',
  'STORAGE_SIZE_MISMATCH',
  'STORAGE_REQUEST_INVALID',
  'STORAGE_REFUSED',
  'STORAGE_NOT_FOUND',
  'STORAGE_NO_HOLDERS',
] as const

export type StorageErrorCode = (typeof storageErrorCodes)[number]

/** An error of stored content, with one of {@link storageErrorCodes}. */
export class StorageError extends MeshworkError {
  override readonly name = 'StorageError'
  constructor(code: StorageErrorCode, message: string, options: MeshworkErrorOptions = {}) {
    super(code, message, options)
  }
}
