import { chmodSync, readFileSync, statSync } from 'node:fs'
import { writeFileDurable } from './durable-file.js'
import { InvalidArgumentError } from './errors.js'

/**
 * Writes a secret file readable by its owner only, refusing to overwrite, and flushed to disk
 * before it returns: a key whose address was shown (and maybe funded) must survive a power loss.
 */
export function writeSecretFile(path: string, data: string | Uint8Array): void {
  writeFileDurable(path, data, { mode: 0o600, exclusive: true })
  chmodSync(path, 0o600)
}

/** Reads a secret file, refusing one that others can read. */
export function readSecretFile(path: string): Buffer {
  if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
    throw new InvalidArgumentError(`${path} is readable by other users`, { hint: `Run chmod 600 ${path}` })
  }
  return readFileSync(path)
}
