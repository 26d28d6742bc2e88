import { createHash } from 'node:crypto'
import type { NetworkPort } from '../mesh/network-port.js'
import { chunkCount, verifyChunk } from './chunk-tree.js'
import { frame, MAX_STORAGE_MESSAGE_BYTES, STORAGE_PROTOCOL, STORAGE_RESPONSE, unframe } from './protocol.js'

/**
 * Proof of storage, the verifier's side: which chunk of a shard a challenge names (unpredictable
 * before the epoch's seed block, different per verifier and slot), and one challenge sent and
 * checked against the root the holder signed. The deadline is what reading a chunk from a local
 * disk allows, not fetching the shard from elsewhere.
 */

/** The gossip topic holders publish their receipts on (verifiers learn what to challenge from it). */
export function storageTopic(network: string): string {
  return `meshwork/${network}/storage/1`
}

/** A shard to challenge: where it is and what its holder committed to. */
export interface ChallengedShard {
  holder: string
  cid: string
  shard: number
  root: string
  bytes: number
  chunkBytes: number
}

/** The chunk challenge `slot` of this epoch asks for: sha-256 of the inputs, modulo the chunk count. */
export function challengedChunk(seed: string, verifier: string, s: ChallengedShard, slot: number): number {
  const h = createHash('sha256')
    .update(`meshwork-storage-challenge\n${seed}\n${verifier}\n${s.holder}\n${s.cid}\n${s.shard}\n${slot}`)
    .digest()
  return h.readUInt32BE(0) % chunkCount(s.bytes, s.chunkBytes)
}

/** Why a challenge failed, or `passed`. */
export type StorageChallengeOutcome = 'passed' | 'unreachable' | 'refused' | 'malformed' | 'bad_proof'

/** Asks the holder for `chunk` and its path within `timeoutMs`, and checks it against the signed root. */
export async function challengeShard(
  port: Pick<NetworkPort, 'request'>,
  s: ChallengedShard,
  chunk: number,
  timeoutMs: number,
): Promise<StorageChallengeOutcome> {
  let response: Uint8Array
  try {
    response = await port.request(
      s.holder,
      STORAGE_PROTOCOL,
      frame({ op: 'prove', cid: s.cid, shard: s.shard, chunk }),
      {
        timeoutMs,
        maxResponseBytes: MAX_STORAGE_MESSAGE_BYTES,
      },
    )
  } catch {
    return 'unreachable'
  }
  let parsed: ReturnType<typeof unframe<ReturnType<typeof STORAGE_RESPONSE.parse>>>
  try {
    parsed = unframe(response, STORAGE_RESPONSE)
  } catch {
    return 'malformed'
  }
  if (!parsed.header.ok) return 'refused'
  const path = (parsed.header.path ?? []).map((h) => Buffer.from(h, 'hex'))
  const ok = verifyChunk(
    Buffer.from(s.root, 'hex'),
    chunkCount(s.bytes, s.chunkBytes),
    chunk,
    parsed.body,
    path,
  )
  return ok ? 'passed' : 'bad_proof'
}
