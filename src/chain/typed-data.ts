import { secp256k1 } from '@noble/curves/secp256k1'
import {
  concatHex,
  getAddress,
  type Hex,
  hashTypedData,
  hexToBytes,
  keccak256,
  type LocalAccount,
} from 'viem'
import { InvalidArgumentError } from '../core/errors.js'

/** The EIP-712 domain of one Meshwork contract: binds the chain id and the contract's address. */
export interface ContractDomain {
  name: string
  version: '1'
  chainId: number
  verifyingContract: `0x${string}`
}

/** Domain names as the contracts declare them. */
export const DOMAIN_NAMES = {
  NodeRegistry: 'Meshwork NodeRegistry',
  EpochRewards: 'Meshwork EpochRewards',
  Payments: 'Meshwork Payments',
} as const

/** Builds the EIP-712 domain of a contract. */
export function contractDomain(
  contract: keyof typeof DOMAIN_NAMES,
  chainId: number,
  verifyingContract: `0x${string}`,
): ContractDomain {
  return { name: DOMAIN_NAMES[contract], version: '1', chainId, verifyingContract }
}

/** EIP-712 types of every message the contracts verify (docs/protocol.md). */
export const TYPES = {
  PostRoot: {
    PostRoot: [
      { name: 'epoch', type: 'uint64' },
      { name: 'root', type: 'bytes32' },
      { name: 'bundleDigest', type: 'bytes32' },
      { name: 'totalCumulative', type: 'uint128' },
      { name: 'revocations', type: 'uint32' },
    ],
  },
  RevokeRoot: {
    RevokeRoot: [
      { name: 'epoch', type: 'uint64' },
      { name: 'root', type: 'bytes32' },
      { name: 'revocations', type: 'uint32' },
    ],
  },
  SlashNode: {
    SlashNode: [
      { name: 'nodeId', type: 'bytes32' },
      { name: 'amount', type: 'uint256' },
      { name: 'evidenceHash', type: 'bytes32' },
    ],
  },
  SlashVerifier: {
    SlashVerifier: [
      { name: 'verifier', type: 'address' },
      { name: 'amount', type: 'uint256' },
      { name: 'evidenceHash', type: 'bytes32' },
    ],
  },
  Voucher: {
    Voucher: [
      { name: 'channelId', type: 'uint256' },
      { name: 'cumulativeAmount', type: 'uint128' },
    ],
  },
} as const

export type MessageKind = keyof typeof TYPES

/** The message fields of each kind. */
export interface Messages {
  /** `revocations`: EpochRewards' count of revoked roots when signing (see `getEpochState`). */
  PostRoot: { epoch: bigint; root: Hex; bundleDigest: Hex; totalCumulative: bigint; revocations: number }
  RevokeRoot: { epoch: bigint; root: Hex; revocations: number }
  SlashNode: { nodeId: Hex; amount: bigint; evidenceHash: Hex }
  SlashVerifier: { verifier: `0x${string}`; amount: bigint; evidenceHash: Hex }
  Voucher: { channelId: bigint; cumulativeAmount: bigint }
}

/** A signature with the address that made it. */
export interface SignedBy {
  signer: `0x${string}`
  signature: Hex
}

/** Signs one EIP-712 message with a local account. */
export async function signMessageOf<K extends MessageKind>(
  account: Pick<LocalAccount, 'address' | 'signTypedData'>,
  domain: ContractDomain,
  kind: K,
  message: Messages[K],
): Promise<SignedBy> {
  const signature = await account.signTypedData({
    domain,
    types: TYPES[kind],
    primaryType: kind,
    message,
  } as never)
  return { signer: account.address, signature }
}

/** Recovers who signed an EIP-712 message (see {@link recoverSignerSync}). */
export async function recoverSigner<K extends MessageKind>(
  domain: ContractDomain,
  kind: K,
  message: Messages[K],
  signature: Hex,
): Promise<`0x${string}`> {
  return recoverSignerSync(domain, kind, message, signature)
}

/**
 * Recovers who signed an EIP-712 message, synchronously: viem's recovery loads its curve code with a
 * dynamic import on every call, which under a module loader with hooks (tsx, test runners) is a
 * round trip to another thread; the simulator must never wait on real time in virtual time.
 *
 * @throws when the signature is not 65 bytes or does not recover to a point.
 */
export function recoverSignerSync<K extends MessageKind>(
  domain: ContractDomain,
  kind: K,
  message: Messages[K],
  signature: Hex,
): `0x${string}` {
  const hash = hashTypedData({ domain, types: TYPES[kind], primaryType: kind, message } as never)
  const bytes = hexToBytes(signature)
  if (bytes.length !== 65) throw new InvalidArgumentError(`a signature has 65 bytes, not ${bytes.length}`)
  const v = bytes[64] as number
  const recovery = v >= 27 ? v - 27 : v
  if (recovery !== 0 && recovery !== 1) throw new InvalidArgumentError(`bad signature recovery byte ${v}`)
  const point = secp256k1.Signature.fromCompact(bytes.subarray(0, 64))
    .addRecoveryBit(recovery)
    .recoverPublicKey(hexToBytes(hash))
  const publicKey = point.toRawBytes(false)
  return getAddress(`0x${keccak256(publicKey.subarray(1)).slice(-40)}`)
}

/**
 * Packs quorum signatures as the contracts take them: 65-byte (r, s, v) signatures concatenated in
 * ascending signer order, one per signer (repeats of a signer are dropped), so that an honest set of
 * signatures is always accepted.
 */
export function packSignatures(signatures: readonly SignedBy[]): Hex {
  const bySigner = new Map<string, SignedBy>()
  for (const s of signatures) bySigner.set(s.signer.toLowerCase(), s)
  const ordered = [...bySigner.entries()].sort(([a], [b]) => (BigInt(a) < BigInt(b) ? -1 : 1))
  for (const [signer, s] of ordered) {
    if (s.signature.length !== 132) {
      throw new InvalidArgumentError(`the signature of ${signer} is not 65 bytes`, { details: { signer } })
    }
  }
  return concatHex(ordered.map(([, s]) => s.signature))
}
