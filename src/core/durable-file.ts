import { closeSync, fsync, fsyncSync, openSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { promisify } from 'node:util'

const fsyncAsync = promisify(fsync)

/** Whether `err` is a platform refusing to flush a directory (Windows, some file systems): not a failure. */
function directoryFlushUnsupported(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'EISDIR' || code === 'EINVAL' || code === 'EPERM' || code === 'EBADF'
}

/** A directory opened for flushing, or undefined where the platform does not open directories. */
function openDirectory(dir: string): number | undefined {
  try {
    return openSync(dir, 'r')
  } catch {
    return undefined
  }
}

/**
 * Flushes a directory's entries to disk (a file made in it, a rename into it), so that they survive
 * a power loss and not only a crash of the process: in libuv's thread pool, or on the calling thread
 * when `inline`. Skipped where the platform does not open or flush directories.
 */
export async function fsyncDirectory(dir: string, options: { inline?: boolean } = {}): Promise<void> {
  if (options.inline === true) return fsyncDirectorySync(dir)
  const fd = openDirectory(dir)
  if (fd === undefined) return
  await fsyncAsync(fd)
    .catch((err: unknown) => {
      if (!directoryFlushUnsupported(err)) throw err
    })
    .finally(() => closeSync(fd))
}

/** {@link fsyncDirectory} on the calling thread. */
export function fsyncDirectorySync(dir: string): void {
  const fd = openDirectory(dir)
  if (fd === undefined) return
  try {
    fsyncSync(fd)
  } catch (err) {
    if (!directoryFlushUnsupported(err)) throw err
  } finally {
    closeSync(fd)
  }
}

/**
 * Writes a whole file and flushes it and its directory entry to disk before returning, so that what
 * the caller then reports (a key's address, a deployed network) survives a power loss. `exclusive`
 * refuses to replace an existing file.
 */
export function writeFileDurable(
  path: string,
  data: string | Uint8Array,
  options: { mode?: number; exclusive?: boolean } = {},
): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  const fd = openSync(path, options.exclusive === true ? 'wx' : 'w', options.mode ?? 0o666)
  try {
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  fsyncDirectorySync(dirname(path))
}
