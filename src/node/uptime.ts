import { randomBytes } from 'node:crypto'
import { z } from 'zod'
import { canonicalJson } from '../core/canonical-json.js'
import type { NetworkPort, RequestContext } from '../mesh/network-port.js'
import type { PeerSigner, PeerVerifier } from '../mesh/peer-key.js'

/**
 * The uptime challenge (docs/protocol.md, "Uptime challenge"): a verifier sends a node a fresh
 * nonce over request/response; the node answers with its peer key's signature of the nonce bound to
 * the network, the epoch, the verifier and itself. So an answer proves that the holder of that
 * node's key was online and reachable when asked: it cannot be prepared in advance (the nonce), and
 * it cannot be replayed to another verifier, for another node or in another epoch (all signed).
 */

/** The protocol id of uptime challenges. */
export const UPTIME_PROTOCOL = '/meshwork/uptime/1'
/** Largest challenge a node reads. */
export const UPTIME_CHALLENGE_MAX_BYTES = 512
/** Largest answer a verifier reads. */
export const UPTIME_ANSWER_MAX_BYTES = 256
const SIGNING_PREFIX = 'meshwork-uptime-v1\n'
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

const challengeSchema = z
  .object({
    v: z.literal(1),
    net: z.string().min(1).max(128),
    epoch: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    /** 32 random bytes, base64url. */
    nonce: z.string().regex(/^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/),
  })
  .strict()
const answerSchema = z.object({ sig: z.string().regex(/^[A-Za-z0-9_-]{85}[AQgw]$/) }).strict()

/** A challenge as the verifier sends it. */
export type UptimeChallenge = z.infer<typeof challengeSchema>

/** What a node's answer signs: the challenge bound to who asked and who answers. */
export function uptimeSigningBytes(c: {
  net: string
  epoch: number
  nonce: string
  verifier: string
  node: string
}): Uint8Array {
  return encoder.encode(
    SIGNING_PREFIX +
      canonicalJson({ net: c.net, epoch: c.epoch, nonce: c.nonce, verifier: c.verifier, node: c.node }),
  )
}

/**
 * Serves uptime challenges on `port` for the node whose peer key is `signer`: a request that is not a
 * well-formed challenge for `network` is refused (the caller gets REMOTE_ERROR); a good one is
 * answered with the signature. Returns a function that stops serving.
 */
export function serveUptimeChallenges(
  port: Pick<NetworkPort, 'handle' | 'unhandle'>,
  options: { network: string; signer: PeerSigner; onChallenge?: (from: string, ok: boolean) => void },
): () => void {
  port.handle(
    UPTIME_PROTOCOL,
    async (request: Uint8Array, context: RequestContext) => {
      const challenge = parseChallenge(request)
      const ok = challenge !== undefined && challenge.net === options.network
      options.onChallenge?.(context.from, ok)
      if (!ok) throw new RangeError('not an uptime challenge of this network')
      const sig = options.signer.sign(
        uptimeSigningBytes({ ...challenge, verifier: context.from, node: options.signer.peerId }),
      )
      return encoder.encode(JSON.stringify({ sig: Buffer.from(sig).toString('base64url') }))
    },
    { maxRequestBytes: UPTIME_CHALLENGE_MAX_BYTES },
  )
  return () => port.unhandle(UPTIME_PROTOCOL)
}

function parseChallenge(bytes: Uint8Array): UptimeChallenge | undefined {
  try {
    const parsed = challengeSchema.safeParse(JSON.parse(decoder.decode(bytes)))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}

/** How a challenge went. */
export interface UptimeResult {
  answered: boolean
  /** Round trip in ms (of the clock passed in), when answered. */
  rttMs?: number
  /** Why it counts as missed: `unreachable`, `timeout`, `refused`, `malformed` or `bad_signature`. */
  missed?: 'unreachable' | 'timeout' | 'refused' | 'malformed' | 'bad_signature'
}

/**
 * Sends one uptime challenge from the verifier behind `port` to `node` and checks the answer:
 * answered only when it comes within `timeoutMs` and is `node`'s own signature of this challenge
 * (an answer signed by another key, or for another nonce, verifier, node or epoch, is missed).
 */
export async function challengeUptime(
  port: Pick<NetworkPort, 'peerId' | 'request'>,
  options: {
    network: string
    epoch: number
    node: string
    timeoutMs: number
    verifier: PeerVerifier
    now: () => number
    nonce?: string
  },
): Promise<UptimeResult> {
  const nonce = options.nonce ?? randomBytes(32).toString('base64url')
  const challenge: UptimeChallenge = { v: 1, net: options.network, epoch: options.epoch, nonce }
  const sent = options.now()
  let bytes: Uint8Array
  try {
    bytes = await port.request(options.node, UPTIME_PROTOCOL, encoder.encode(JSON.stringify(challenge)), {
      timeoutMs: options.timeoutMs,
      maxResponseBytes: UPTIME_ANSWER_MAX_BYTES,
    })
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'REQUEST_TIMEOUT') return { answered: false, missed: 'timeout' }
    if (code === 'PEER_UNREACHABLE') return { answered: false, missed: 'unreachable' }
    return { answered: false, missed: 'refused' }
  }
  const rttMs = options.now() - sent
  if (rttMs > options.timeoutMs) return { answered: false, missed: 'timeout' }
  let sig: string
  try {
    const parsed = answerSchema.safeParse(JSON.parse(decoder.decode(bytes)))
    if (!parsed.success) return { answered: false, missed: 'malformed' }
    sig = parsed.data.sig
  } catch {
    return { answered: false, missed: 'malformed' }
  }
  const signed = uptimeSigningBytes({ ...challenge, verifier: port.peerId, node: options.node })
  if (!options.verifier.verify(options.node, signed, Buffer.from(sig, 'base64url')))
    return { answered: false, missed: 'bad_signature' }
  return { answered: true, rttMs }
}
