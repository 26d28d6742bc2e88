import { z } from 'zod'
import { payTicketSchema } from '../compute/payments.js'
import { defineMessage } from '../mesh/wire-codec.js'
import { StorageError } from './errors.js'
import { FILE_PARAMETERS, MAX_SEGMENT_BYTES } from './file-codec.js'

/**
 * The storage protocol, `/meshwork/storage/1`: one request/response protocol whose messages are a
 * JSON header and raw bytes (`u32 header length, big-endian ‖ header ‖ body`). Requests name an
 * operation; every header is validated before anything is read or written (docs/protocol.md).
 */
export const STORAGE_PROTOCOL = '/meshwork/storage/1'

/** Largest piece a holder takes in one request (a whole sealed segment at K = 1). */
export const MAX_PIECE_BYTES = MAX_SEGMENT_BYTES + 1024
/** Largest request or response of the protocol. */
export const MAX_STORAGE_MESSAGE_BYTES = MAX_PIECE_BYTES + 64 * 1024
const MAX_HEADER_BYTES = 32 * 1024

const cid = z.string().regex(/^b[a-z2-7]{20,120}$/, 'a base32 CID')
const upload = z.string().regex(/^[0-9a-f]{32}$/, '32 hex digits')
const shard = z.number().int().min(0).max(127)

/** A request's header. */
export const STORAGE_REQUEST = z.discriminatedUnion('op', [
  /** Asks a holder to take shard `shard` of a file being uploaded; no bytes yet. */
  z
    .object({
      op: z.literal('offer'),
      upload,
      shard,
      ...FILE_PARAMETERS,
      epochs: z.number().int().min(1).max(100_000),
      /** The owner's Payments channel and session signature (as for jobs), when the holder charges. */
      pay: payTicketSchema.optional(),
    })
    .strict(),
  /** Segment `segment`'s piece of the shard (the body), in order. */
  z.object({ op: z.literal('piece'), upload, shard, segment: z.number().int().nonnegative() }).strict(),
  /** The upload is complete: the body is the manifest; the holder checks its shard and signs. */
  z.object({ op: z.literal('seal'), upload, shard }).strict(),
  /** Which shards of `cid` the holder has; the response body is the manifest. */
  z.object({ op: z.literal('has'), cid }).strict(),
  /** Segment `segment`'s piece of shard `shard` of `cid` (the response body). */
  z.object({ op: z.literal('get'), cid, shard, segment: z.number().int().nonnegative() }).strict(),
  /** Chunk `chunk` of shard `shard` and its Merkle path (a verifier's challenge; body: the chunk). */
  z.object({ op: z.literal('prove'), cid, shard, chunk: z.number().int().nonnegative() }).strict(),
  /** The downloader's signed byte receipt for what this holder served (body: the envelope). */
  z.object({ op: z.literal('served') }).strict(),
])

export type StorageRequest = z.infer<typeof STORAGE_REQUEST>

/** A response's header: the answer, or a refusal with its code (docs/ERRORS.md, "Storage"). */
export const STORAGE_RESPONSE = z.discriminatedUnion('ok', [
  z
    .object({
      ok: z.literal(true),
      /** `has`: the shard indices held. */
      shards: z.array(shard).max(128).optional(),
      /** `prove`: the chunk's sibling hashes, hex. */
      path: z
        .array(z.string().regex(/^[0-9a-f]{64}$/))
        .max(64)
        .optional(),
    })
    .strict(),
  z
    .object({
      ok: z.literal(false),
      code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/),
      message: z.string().max(500),
    })
    .strict(),
])

export type StorageResponse = z.infer<typeof STORAGE_RESPONSE>

/** Frames a header and a body. */
export function frame(header: unknown, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const { message, body: room } = frameWithRoom(header, body.length)
  room.set(body)
  return message
}

/**
 * Frames a header and leaves room for a body of `bodyBytes` for the caller to fill (a holder reads a
 * piece from disk straight into its response instead of copying it there).
 */
export function frameWithRoom(header: unknown, bodyBytes: number): { message: Uint8Array; body: Uint8Array } {
  const json = new TextEncoder().encode(JSON.stringify(header))
  const message = new Uint8Array(4 + json.length + bodyBytes)
  new DataView(message.buffer).setUint32(0, json.length)
  message.set(json, 4)
  return { message, body: message.subarray(4 + json.length) }
}

/**
 * Frames a header and `body` in the bytes just before `body` in its buffer, when `room` of them
 * (at least) are free for it (the body was laid out with room in front of it, see
 * `EncodeOptions.pieceRoom`): the message is a view of that buffer and the body is not copied.
 * Otherwise, or when the header does not fit, as {@link frame}.
 */
export function frameInRoom(header: unknown, body: Uint8Array, room: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header))
  const head = 4 + json.length
  if (head > room || head > body.byteOffset) return frame(header, body)
  const message = new Uint8Array(body.buffer, body.byteOffset - head, head + body.length)
  new DataView(message.buffer, message.byteOffset, 4).setUint32(0, json.length)
  message.set(json, 4)
  return message
}

/** Splits a framed message and validates its header with `schema`; a coded error otherwise. */
export function unframe<T>(bytes: Uint8Array, schema: z.ZodType<T>): { header: T; body: Uint8Array } {
  if (bytes.length < 4) throw new StorageError('STORAGE_REQUEST_INVALID', 'message too short')
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0)
  if (length > MAX_HEADER_BYTES || 4 + length > bytes.length)
    throw new StorageError('STORAGE_REQUEST_INVALID', 'bad header length')
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + length)))
  } catch {
    throw new StorageError('STORAGE_REQUEST_INVALID', 'header is not JSON')
  }
  const checked = schema.safeParse(parsed)
  if (!checked.success)
    throw new StorageError(
      'STORAGE_REQUEST_INVALID',
      `bad header: ${checked.error.issues[0]?.path.join('.') ?? ''} ${checked.error.issues[0]?.message ?? ''}`,
    )
  return { header: checked.data, body: bytes.subarray(4 + length) }
}

/**
 * A holder's receipt for a shard, signed with its peer key: it holds shard `shard` of `cid`, whose
 * chunk tree (of `chunkBytes` chunks) has root `root`, for `owner` (the uploading client's peer id) from `fromEpoch` for
 * `epochs` epochs. Verifiers challenge against the root; the owner pays against the receipt.
 */
export const STORAGE_RECEIPT = defineMessage(
  'storage/receipt',
  z
    .object({
      cid,
      shard,
      root: z.string().regex(/^[0-9a-f]{64}$/),
      bytes: z.number().int().nonnegative(),
      chunkBytes: z
        .number()
        .int()
        .min(1_024)
        .max(1024 * 1024),
      owner: z.string().min(1).max(128),
      storedAt: z.number().int().nonnegative(),
      epochs: z.number().int().min(1).max(100_000),
    })
    .strict(),
  { maxBytes: 2_048 },
)

export type StorageReceiptBody = z.infer<typeof STORAGE_RECEIPT.schema>

const GIB = 1n << 30n

/** What a shard of `bytes` kept `epochs` epochs costs at `pricePerGiBEpoch`: ceil(price × bytes × epochs / GiB). */
export function shardPrice(pricePerGiBEpoch: bigint, bytes: number, epochs: number): bigint {
  return (pricePerGiBEpoch * BigInt(bytes) * BigInt(epochs) + GIB - 1n) / GIB
}

/**
 * The payment id of shard `shard` of `cid` (what the holder bills and the voucher names; at most
 * 64 characters, as vouchers carry them): the CID's last 40 characters hold 200 bits of its hash.
 */
export function shardBillId(cid: string, shard: number): string {
  return `st:${cid.slice(-40)}:${shard}`
}

/**
 * A downloader's receipt for bytes a node delivered to it, signed with the downloader's peer key:
 * `holder` is the node paid for them, the holder that served pieces or the circuit relay they came
 * through (or both, summed). `bytes` is cumulative within `session` (a random id per download), so
 * the latest receipt of a session counts and replaying an older one adds nothing. Holders and relays
 * gossip them on the storage topic; verifiers count each node's delivered bytes per epoch (by the
 * receipt's signed time).
 */
export const BANDWIDTH_RECEIPT = defineMessage(
  'storage/served',
  z
    .object({
      holder: z.string().min(1).max(128),
      session: z.string().regex(/^[0-9a-f]{32}$/),
      cid,
      bytes: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    })
    .strict(),
  { maxBytes: 1_024 },
)

export type BandwidthReceiptBody = z.infer<typeof BANDWIDTH_RECEIPT.schema>

/**
 * The relay receipt protocol, `/meshwork/relay/1`: a downloader whose pieces came through a circuit
 * relay hands the relay a {@link BANDWIDTH_RECEIPT} naming it (`holder` is the relay's peer id) for
 * the bytes it carried; the relay gossips it on the storage topic as holders gossip theirs. The
 * request is the signed envelope; the response is a storage response header (`ok`, or a refusal).
 */
export const RELAY_RECEIPT_PROTOCOL = '/meshwork/relay/1'

/** Every message a storage holder or client signs or checks: a codec of either must know them all. */
export const STORAGE_MESSAGES = [STORAGE_RECEIPT, BANDWIDTH_RECEIPT] as const
