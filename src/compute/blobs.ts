import { createHash } from 'node:crypto'
import type { NetworkPort } from '../mesh/network-port.js'
import { ComputeError } from './errors.js'
import type { JobSpec } from './job-spec.js'

/**
 * Code and input by content hash (docs/protocol.md, "Job run"): a spec may name a blob by its
 * sha-256 instead of carrying it inline. The node asks the requesting client for it over
 * `/meshwork/blob/1` (request: the 64 hex digits; response: the bytes), checks the hash, and keeps
 * it in a bounded cache, so a model or module sent once is not sent again. The client serves the
 * blobs of its jobs while they run.
 */

export const BLOB_PROTOCOL = '/meshwork/blob/1'
/** Largest blob fetched by hash (a model or a large input). */
export const MAX_BLOB_BYTES = 32 * 1024 * 1024

export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** The hex sha-256 a blob of a spec commits to, inline or by hash. */
export function blobHash(blob: JobSpec['code']): string {
  return 'inline' in blob ? sha256Hex(Buffer.from(blob.inline, 'base64')) : blob.sha256
}

/** Blobs by hash, least recently used dropped first once over `maxBytes`. */
export class BlobCache {
  readonly #maxBytes: number
  readonly #blobs = new Map<string, Uint8Array>()
  #bytes = 0

  constructor(maxBytes = 256 * 1024 * 1024) {
    this.#maxBytes = maxBytes
  }

  get(hash: string): Uint8Array | undefined {
    const b = this.#blobs.get(hash)
    if (b !== undefined) {
      this.#blobs.delete(hash)
      this.#blobs.set(hash, b)
    }
    return b
  }

  put(hash: string, bytes: Uint8Array): void {
    if (this.#blobs.has(hash) || bytes.length > this.#maxBytes) return
    this.#blobs.set(hash, bytes)
    this.#bytes += bytes.length
    for (const [h, b] of this.#blobs) {
      if (this.#bytes <= this.#maxBytes) break
      this.#blobs.delete(h)
      this.#bytes -= b.length
    }
  }
}

/**
 * The bytes of a spec's blob: inline, from `cache`, or fetched from `from` (the client) and checked
 * against the hash.
 *
 * @throws ComputeError JOB_SPEC_INVALID when the blob cannot be had or does not match its hash.
 */
export async function resolveBlob(
  blob: JobSpec['code'],
  what: 'code' | 'input',
  options: { port: Pick<NetworkPort, 'request'>; from: string; cache: BlobCache; timeoutMs?: number },
): Promise<Uint8Array> {
  if ('inline' in blob) return new Uint8Array(Buffer.from(blob.inline, 'base64'))
  const cached = options.cache.get(blob.sha256)
  if (cached) return cached
  let bytes: Uint8Array
  try {
    bytes = await options.port.request(options.from, BLOB_PROTOCOL, new TextEncoder().encode(blob.sha256), {
      timeoutMs: options.timeoutMs ?? 30_000,
      maxResponseBytes: MAX_BLOB_BYTES,
    })
  } catch (err) {
    throw new ComputeError('JOB_SPEC_INVALID', `job spec ${what}: the client did not serve it by hash`, {
      hint: 'Keep the client connected while the job runs, or send it inline',
      cause: err,
    })
  }
  if (sha256Hex(bytes) !== blob.sha256)
    throw new ComputeError('JOB_SPEC_INVALID', `job spec ${what}: the bytes served do not match its hash`)
  options.cache.put(blob.sha256, bytes)
  return bytes
}

/**
 * Serves a client's blobs on {@link BLOB_PROTOCOL}: `add` them (by their hash) before sending the
 * spec; the handler answers only hashes it holds.
 */
export class BlobServer {
  readonly #blobs = new Map<string, { bytes: Uint8Array; uses: number }>()
  readonly #port: Pick<NetworkPort, 'handle' | 'unhandle'>

  constructor(port: Pick<NetworkPort, 'handle' | 'unhandle'>) {
    this.#port = port
    port.handle(
      BLOB_PROTOCOL,
      async (request) => {
        const held = this.#blobs.get(new TextDecoder().decode(request))
        if (held === undefined) throw new RangeError('no such blob here')
        return held.bytes
      },
      { maxRequestBytes: 64 },
    )
  }

  /** Holds `bytes` until as many `release`s as `add`s; returns its hash. */
  add(bytes: Uint8Array): string {
    const hash = sha256Hex(bytes)
    const held = this.#blobs.get(hash)
    this.#blobs.set(hash, { bytes, uses: (held?.uses ?? 0) + 1 })
    return hash
  }

  release(hash: string): void {
    const held = this.#blobs.get(hash)
    if (held === undefined) return
    if (held.uses <= 1) this.#blobs.delete(hash)
    else held.uses--
  }

  close(): void {
    this.#port.unhandle(BLOB_PROTOCOL)
    this.#blobs.clear()
  }
}
