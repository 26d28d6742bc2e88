import { z } from 'zod'
import { canonicalJson } from '../core/canonical-json.js'
import type { Clock } from '../core/clock.js'
import type { Verdict } from './network-port.js'
import { createPeerVerifier, type PeerSigner, type PeerVerifier } from './peer-key.js'

/**
 * The one codec every wire message goes through (docs/protocol.md, "Wire envelope").
 *
 * Bytes on the wire are UTF-8 JSON: `{"v":1,"net","type","from","seq","ts","exp","body","sig"}`.
 * `sig` is the sender's Ed25519 peer-key signature (base64url) of `"meshwork-wire-v1\n"` followed by
 * the canonical JSON of every other field. Decoding checks, cheapest first: size, JSON, envelope
 * shape, network, message type, transport sender, clock skew and expiry, body schema, signature,
 * and last the sender's sequence number (each taken once, within a window: replay).
 */

/** A message type: its name on the wire, the schema of its body and its size cap. */
export interface MessageType<T> {
  readonly type: string
  readonly schema: z.ZodType<T>
  readonly maxBytes: number
}

/** Declares a message type. */
export function defineMessage<T>(
  type: string,
  schema: z.ZodType<T>,
  options: { maxBytes?: number } = {},
): MessageType<T> {
  return { type, schema, maxBytes: options.maxBytes ?? DEFAULT_MAX_WIRE_BYTES }
}

/** Default size cap of one wire message. */
export const DEFAULT_MAX_WIRE_BYTES = 64 * 1024

/** A decoded, verified message. */
export interface Envelope<T = unknown> {
  v: 1
  /** The network it belongs to (chain id and registry address), so nothing crosses networks. */
  net: string
  type: string
  /** The sender's peer id; `sig` is by its key. */
  from: string
  /**
   * Per sender and type, increasing. A receiver takes each number once, out of order within
   * {@link SEQ_WINDOW} of the highest it heard; further back is a replay.
   */
  seq: number
  /** Sent at, and valid until (ms since the epoch, the sender's clock). */
  ts: number
  exp: number
  body: T
}

/** A message with its signature, as bundles and stores keep it. */
export interface SignedEnvelope<T = unknown> extends Envelope<T> {
  /** The sender's Ed25519 signature, base64url (86 characters). */
  sig: string
}

/** Why a message was dropped; metrics count by these. */
export const rejectReasons = [
  'too_large',
  'malformed',
  'unknown_type',
  'wrong_network',
  'sender_mismatch',
  'future',
  'expired',
  'bad_signature',
  'replay',
  'duplicate',
] as const
export type RejectReason = (typeof rejectReasons)[number]

/** What decoding came to. `verdict` is what to tell gossipsub about the peer that relayed it. */
export type Decoded<T = unknown> =
  | { ok: true; envelope: SignedEnvelope<T> }
  | { ok: false; reason: RejectReason; verdict: Exclude<Verdict, 'accept'>; detail?: string }

/** Options of {@link createWireCodec}. */
export interface WireCodecInit {
  /** This network's id, e.g. `31337:0xRegistry…` (see `networkIdOf`). */
  network: string
  signer: PeerSigner
  clock: Pick<Clock, 'now'>
  types: readonly MessageType<unknown>[]
  /** Next sequence number for a type; the node persists it so that a restart continues it. */
  nextSeq: (type: string) => number
  /** Largest clock difference tolerated (default 30 s). */
  maxSkewMs?: number
  /** Longest validity a message may claim (default 1 h). */
  maxTtlMs?: number
  /** Senders (by type) whose sequence numbers are remembered (default 10,000; the least recently heard are forgotten). */
  replayCacheSize?: number
  verifier?: PeerVerifier
  /** Called for every dropped message (metrics). */
  onReject?: (reason: RejectReason, type: string | undefined) => void
}

/** An encoded message, with the sequence number and expiry it was given. */
export interface Encoded {
  bytes: Uint8Array
  seq: number
  exp: number
}

/** Encodes and decodes wire messages for one node. */
export interface WireCodec {
  /** Signs and encodes a message of this node (next sequence number, expiry `ttlMs` from now). */
  encode<T>(type: MessageType<T>, body: T, options?: { ttlMs?: number }): Encoded
  /** Decodes bytes received from `from` (the transport-authenticated sender, when known). */
  decode(bytes: Uint8Array, options?: { from?: string }): Decoded
}

const SIGNING_PREFIX = 'meshwork-wire-v1\n'
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

const envelopeSchema = z
  .object({
    v: z.literal(1),
    net: z.string().min(1).max(128),
    type: z.string().min(1).max(64),
    from: z.string().min(1).max(128),
    seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    ts: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    exp: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    body: z.unknown(),
    // 64 bytes in unpadded base64url: the last character carries 2 bits and 4 zero bits, so only
    // one spelling of a signature is accepted (a message has one encoding, one content id).
    sig: z.string().regex(/^[A-Za-z0-9_-]{85}[AQgw]$/),
  })
  .strict()

/** The network id messages are bound to: chain id and NodeRegistry address. */
export function networkIdOf(network: { chainId: number; contracts: { NodeRegistry: string } }): string {
  return `${network.chainId}:${network.contracts.NodeRegistry.toLowerCase()}`
}

/** Creates the codec. Decoding never throws: every failure is a {@link Decoded} with a reason. */
export function createWireCodec(init: WireCodecInit): WireCodec {
  const maxSkew = init.maxSkewMs ?? 30_000
  const maxTtl = init.maxTtlMs ?? 3_600_000
  const cacheSize = init.replayCacheSize ?? 10_000
  const verifier = init.verifier ?? createPeerVerifier()
  const types = new Map(init.types.map((t) => [t.type, t]))
  const maxBytes = Math.max(...init.types.map((t) => t.maxBytes), 0)
  const windows = new Map<string, SeqWindow>()

  const drop = (reason: RejectReason, type?: string, detail?: string): Decoded => {
    init.onReject?.(reason, type)
    const verdict = reason === 'duplicate' || reason === 'unknown_type' ? 'ignore' : 'reject'
    return detail === undefined ? { ok: false, reason, verdict } : { ok: false, reason, verdict, detail }
  }

  return {
    encode(type, body, options = {}) {
      if (!types.has(type.type))
        throw new TypeError(`message type ${type.type} is not registered with this codec`)
      const ts = init.clock.now()
      const unsigned = {
        v: 1 as const,
        net: init.network,
        type: type.type,
        from: init.signer.peerId,
        seq: init.nextSeq(type.type),
        ts,
        exp: ts + Math.min(options.ttlMs ?? maxTtl, maxTtl),
        body: type.schema.parse(body),
      }
      const sig = init.signer.sign(encoder.encode(SIGNING_PREFIX + canonicalJson(unsigned)))
      const bytes = encoder.encode(
        JSON.stringify({ ...unsigned, sig: Buffer.from(sig).toString('base64url') }),
      )
      if (bytes.length > type.maxBytes) {
        throw new RangeError(
          `a ${type.type} message of ${bytes.length} bytes exceeds its cap of ${type.maxBytes}`,
        )
      }
      return { bytes, seq: unsigned.seq, exp: unsigned.exp }
    },

    decode(bytes, options = {}) {
      if (bytes.length > maxBytes) return drop('too_large')
      let json: unknown
      try {
        json = JSON.parse(decoder.decode(bytes))
      } catch {
        return drop('malformed', undefined, 'not UTF-8 JSON')
      }
      const parsed = envelopeSchema.safeParse(json)
      if (!parsed.success) return drop('malformed', undefined, parsed.error.issues[0]?.message)
      const { sig, ...unsigned } = parsed.data
      const kind = types.get(unsigned.type)
      if (!kind) return drop('unknown_type', unsigned.type)
      if (bytes.length > kind.maxBytes) return drop('too_large', kind.type)
      if (unsigned.net !== init.network) return drop('wrong_network', kind.type)
      if (options.from !== undefined && options.from !== unsigned.from)
        return drop('sender_mismatch', kind.type)
      const now = init.clock.now()
      if (unsigned.ts > now + maxSkew) return drop('future', kind.type)
      if (unsigned.exp <= now) return drop('expired', kind.type)
      if (unsigned.exp < unsigned.ts || unsigned.exp - unsigned.ts > maxTtl) {
        return drop('malformed', kind.type, 'validity out of range')
      }
      const body = kind.schema.safeParse(unsigned.body)
      if (!body.success) return drop('malformed', kind.type, body.error.issues[0]?.message)
      const signature = checkSignature(verifier, unsigned, sig)
      if (signature !== 'ok') return drop(signature, kind.type)
      const key = `${unsigned.from}|${kind.type}`
      let window = windows.get(key)
      if (window !== undefined) windows.delete(key)
      else {
        if (windows.size >= cacheSize) windows.delete(windows.keys().next().value as string)
        window = new SeqWindow()
      }
      // Most recently heard last, so the least recently heard sender is forgotten first.
      windows.set(key, window)
      const seen = window.take(unsigned.seq)
      if (seen !== 'new') return drop(seen, kind.type)
      return { ok: true, envelope: { ...unsigned, body: body.data, sig } }
    },
  }
}

/**
 * The sequence numbers heard from one sender of one type: the highest, and which of the
 * {@link SEQ_WINDOW} below it (an anti-replay window, as IPsec and DTLS keep). A message may arrive
 * after a later one of its sender (gossiped by another peer, or sent on another stream) and is taken
 * if it was not heard before; one further back than the window is a replay.
 */
class SeqWindow {
  #high = -1
  readonly #bits = new Uint32Array(SEQ_WINDOW / 32)

  take(seq: number): 'new' | 'duplicate' | 'replay' {
    if (seq > this.#high) {
      // Slide up: the positions of the numbers passed over are cleared (they were not heard).
      const gap = this.#high < 0 ? SEQ_WINDOW : seq - this.#high
      if (gap >= SEQ_WINDOW) this.#bits.fill(0)
      else for (let s = this.#high + 1; s < seq; s++) this.#clear(s)
      this.#high = seq
      this.#set(seq)
      return 'new'
    }
    if (this.#high - seq >= SEQ_WINDOW) return 'replay'
    if (this.#has(seq)) return 'duplicate'
    this.#set(seq)
    return 'new'
  }

  #set(seq: number): void {
    const i = seq % SEQ_WINDOW
    this.#bits[i >>> 5] = (this.#bits[i >>> 5] as number) | (1 << (i & 31))
  }

  #clear(seq: number): void {
    const i = seq % SEQ_WINDOW
    this.#bits[i >>> 5] = (this.#bits[i >>> 5] as number) & ~(1 << (i & 31))
  }

  #has(seq: number): boolean {
    const i = seq % SEQ_WINDOW
    return ((this.#bits[i >>> 5] as number) & (1 << (i & 31))) !== 0
  }
}

/** How far below the highest sequence number heard a message of the same sender and type is still taken. */
export const SEQ_WINDOW = 1024

/** Whether `sig` is `unsigned.from`'s signature of `unsigned` (the envelope without `sig`). */
function checkSignature(
  verifier: PeerVerifier,
  unsigned: Omit<SignedEnvelope, 'sig'>,
  sig: string,
): 'ok' | 'malformed' | 'bad_signature' {
  let signed: Uint8Array
  try {
    signed = encoder.encode(SIGNING_PREFIX + canonicalJson(unsigned))
  } catch {
    return 'malformed'
  }
  return verifier.verify(unsigned.from, signed, Buffer.from(sig, 'base64url')) ? 'ok' : 'bad_signature'
}

/**
 * Checks a stored message of type `type` (e.g. an observation in an epoch bundle): envelope shape,
 * network, type, body schema and signature, but not freshness (its expiry has long passed when an
 * auditor checks a bundle) or sequence (a bundle holds one message of each sender and subject).
 */
export function verifyEnvelope<T>(
  value: unknown,
  type: MessageType<T>,
  options: { network: string; verifier: PeerVerifier },
): { ok: true; envelope: SignedEnvelope<T> } | { ok: false; reason: RejectReason } {
  const parsed = envelopeSchema.safeParse(value)
  if (!parsed.success) return { ok: false, reason: 'malformed' }
  const { sig, ...unsigned } = parsed.data
  if (unsigned.type !== type.type) return { ok: false, reason: 'unknown_type' }
  if (unsigned.net !== options.network) return { ok: false, reason: 'wrong_network' }
  const body = type.schema.safeParse(unsigned.body)
  if (!body.success) return { ok: false, reason: 'malformed' }
  const signature = checkSignature(options.verifier, unsigned, sig)
  if (signature !== 'ok') return { ok: false, reason: signature }
  return { ok: true, envelope: { ...unsigned, body: body.data, sig } }
}
