import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { InvalidArgumentError } from './errors.js'

/** Writes a secret file readable by its owner only, refusing to overwrite. */
export function writeSecretFile(path: string, data: string | Uint8Array): void {
  writeFileSync(path, data, { mode: 0o600, flag: 'wx' })
  chmodSync(path, 0o600)
}

/** Reads a secret file, refusing one that others can read. */
export function readSecretFile(path: string): Buffer {
  if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
    throw new InvalidArgumentError(`${path} is readable by other users`, { hint: `Run chmod 600 ${path}` })
  }
  return readFileSync(path)
}
