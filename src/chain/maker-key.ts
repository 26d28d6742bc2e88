import { peerIdFromString } from '@libp2p/peer-id'
import { base58btc } from 'multiformats/bases/base58'
import { bytesToHex, type Hex, hexToBytes } from 'viem'
import { InvalidArgumentError } from '../core/errors.js'
import { MAX_MAKERS } from '../rewards/reward-function.js'

/**
 * A hardware maker's key as governance approves it (docs/governance.md, "Hardware makers"): people
 * and the reward function name a maker by its Ed25519 key's libp2p peer id (`12D3KooW…`);
 * NetworkParams stores the raw 32-byte public key (bytes32).
 */

/** The most makers one NetworkParams version lists (the contract's `MAX_MAKERS`, the reward function's). */
export { MAX_MAKERS }

/** A peer id's bytes before an Ed25519 public key: identity multihash (0x00, 36 bytes) of its protobuf form. */
const ED25519_PEER_ID_PREFIX = Uint8Array.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])

const MAKER_HINT = "Name a maker by its Ed25519 key's peer id (12D3KooW…)"

/**
 * The bytes32 NetworkParams stores for a maker: the raw Ed25519 public key inside its peer id.
 * Takes the peer id in either string form (base58btc `12D3KooW…` or base32 CID).
 *
 * @throws InvalidArgumentError when `peerId` is not a peer id, or not an Ed25519 key's.
 *
 * @example
 * makerKeyOfPeerId('12D3KooW…') // '0x…' (64 hex digits)
 */
export function makerKeyOfPeerId(peerId: string): Hex {
  let id: ReturnType<typeof peerIdFromString>
  try {
    id = peerIdFromString(peerId)
  } catch (cause) {
    throw new InvalidArgumentError(`maker ${JSON.stringify(peerId.slice(0, 140))} is not a peer id`, {
      hint: MAKER_HINT,
      cause,
    })
  }
  if (id.type !== 'Ed25519' || id.publicKey === undefined) {
    throw new InvalidArgumentError(
      `maker ${peerId} is not an Ed25519 key's peer id (its key type: ${id.type})`,
      {
        hint: `${MAKER_HINT}: maker certificates are Ed25519 signatures`,
        details: { type: id.type },
      },
    )
  }
  return bytesToHex(id.publicKey.raw)
}

/**
 * The peer id (base58btc, `12D3KooW…`) of a maker key as NetworkParams stores it.
 *
 * @throws InvalidArgumentError when `key` is not 32 bytes.
 */
export function makerPeerIdOf(key: Hex): string {
  if (!/^0x[0-9a-fA-F]{64}$/.test(key))
    throw new InvalidArgumentError(`a maker key is 32 bytes (0x and 64 hex digits), got ${key.slice(0, 80)}`)
  const bytes = new Uint8Array(ED25519_PEER_ID_PREFIX.length + 32)
  bytes.set(ED25519_PEER_ID_PREFIX, 0)
  bytes.set(hexToBytes(key), ED25519_PEER_ID_PREFIX.length)
  return base58btc.baseEncode(bytes)
}

/**
 * A maker list as NetworkParams takes it: each peer id's key, ascending (the contract refuses any
 * other order, so the list has one form).
 *
 * @throws InvalidArgumentError for a maker that is not an Ed25519 peer id, one named twice, or more
 * than {@link MAX_MAKERS}.
 */
export function makerKeysOf(peerIds: readonly string[]): Hex[] {
  const keys = peerIds.map(makerKeyOfPeerId)
  const sorted = sortMakerKeys(keys)
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1])
      throw new InvalidArgumentError(`maker ${makerPeerIdOf(sorted[i] as Hex)} is named twice`, {
        details: { maker: makerPeerIdOf(sorted[i] as Hex) },
      })
  }
  if (sorted.length > MAX_MAKERS)
    throw new InvalidArgumentError(
      `${sorted.length} makers are more than the ${MAX_MAKERS} one version lists`,
      {
        hint: 'Revoke makers that no longer ship devices before approving more',
      },
    )
  return sorted
}

/** Maker keys in the order NetworkParams keeps them: ascending as 256-bit numbers (lower-case hex). */
export function sortMakerKeys(keys: readonly Hex[]): Hex[] {
  return keys.map((k) => k.toLowerCase() as Hex).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}
