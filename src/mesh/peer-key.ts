import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'

/** DER prefixes that wrap a raw Ed25519 seed (PKCS#8) or public key (SPKI) for node:crypto. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')

/** Signs bytes with a node's libp2p key (its peer id is the identity). */
export interface PeerSigner {
  readonly peerId: string
  sign(data: Uint8Array): Uint8Array
}

/**
 * A signer for a libp2p Ed25519 key. Uses node:crypto, about 40 times faster than a JS
 * implementation for the many signatures a node makes (STACK.md).
 */
export function createPeerSigner(key: Ed25519PrivateKey): PeerSigner {
  const seed = key.raw.subarray(0, 32)
  const keyObject = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, seed]),
    format: 'der',
    type: 'pkcs8',
  })
  return {
    peerId: peerIdFromPrivateKey(key).toString(),
    sign: (data) => new Uint8Array(sign(null, data, keyObject)),
  }
}

/** Checks signatures against the public key inside a peer id. */
export interface PeerVerifier {
  /** True when `signature` is `peerId`'s Ed25519 signature of `data`; false for anything else. */
  verify(peerId: string, data: Uint8Array, signature: Uint8Array): boolean
}

/**
 * A verifier that keeps the last `cacheSize` peers' parsed keys (bounded, so a flood of new peer
 * ids cannot grow memory). Peer ids that do not embed an Ed25519 key never verify.
 */
export function createPeerVerifier(options: { cacheSize?: number } = {}): PeerVerifier {
  const cacheSize = options.cacheSize ?? 4_096
  const cache = new Map<string, KeyObject | null>()
  const keyOf = (peerId: string): KeyObject | null => {
    const hit = cache.get(peerId)
    if (hit !== undefined) {
      // Refresh its place in the LRU order.
      cache.delete(peerId)
      cache.set(peerId, hit)
      return hit
    }
    let key: KeyObject | null = null
    try {
      const id = peerIdFromString(peerId)
      if (id.type === 'Ed25519' && id.publicKey) {
        key = createPublicKey({
          key: Buffer.concat([SPKI_ED25519, id.publicKey.raw]),
          format: 'der',
          type: 'spki',
        })
      }
    } catch {
      key = null
    }
    if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string)
    cache.set(peerId, key)
    return key
  }
  return {
    verify(peerId, data, signature) {
      if (signature.length !== 64) return false
      const key = keyOf(peerId)
      if (!key) return false
      try {
        return verify(null, data, key, signature)
      } catch {
        return false
      }
    },
  }
}

/** The binary form of a peer id (its multihash), as NodeRegistry stores it. */
export function peerIdBytes(peerId: string): Uint8Array {
  return peerIdFromString(peerId).toMultihash().bytes
}
