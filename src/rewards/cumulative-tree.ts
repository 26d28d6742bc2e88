import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, getAddress, type Hex, hexToBytes } from 'viem'

/** One operator's entry: everything it has earned since genesis, in MESH base units. */
export interface CumulativeEntry {
  account: `0x${string}`
  cumulativeAmount: bigint
}

/** A built tree: its root, and a proof for every account. */
export interface CumulativeTree {
  readonly root: Hex
  readonly size: number
  /** The proof of `account`'s leaf, or undefined when it has no leaf. */
  proof(account: `0x${string}`): { cumulativeAmount: bigint; proof: Hex[] } | undefined
}

const MAX_UINT256 = (1n << 256n) - 1n

/**
 * The leaf of (account, amount) in OpenZeppelin's standard format: keccak256(keccak256(abi.encode(
 * address, uint256))). EpochRewards verifies exactly this, and @openzeppelin/merkle-tree builds it.
 */
export function leafHash(account: `0x${string}`, amount: bigint): Uint8Array {
  if (amount < 0n || amount > MAX_UINT256) throw new RangeError(`amount out of uint256 range: ${amount}`)
  const encoded = new Uint8Array(64)
  encoded.set(hexToBytes(account), 12)
  let v = amount
  for (let i = 63; i >= 32 && v > 0n; i--) {
    encoded[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return keccak_256(keccak_256(encoded))
}

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) {
    const d = (a[i] as number) - (b[i] as number)
    if (d !== 0) return d
  }
  return 0
}

const pair = new Uint8Array(64)
function hashPair(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (compare(a, b) <= 0) {
    pair.set(a, 0)
    pair.set(b, 32)
  } else {
    pair.set(b, 0)
    pair.set(a, 32)
  }
  return keccak_256(pair)
}

/**
 * Builds the cumulative reward tree in OpenZeppelin's standard Merkle format (leaves sorted by hash,
 * laid out as a complete binary tree in an array, pairs hashed in sorted order), so that its root and
 * proofs match `StandardMerkleTree.of(entries, ['address', 'uint256'])` byte for byte.
 *
 * @throws RangeError when the list is empty or an account appears twice.
 */
export function buildCumulativeTree(entries: readonly CumulativeEntry[]): CumulativeTree {
  const n = entries.length
  if (n === 0) throw new RangeError('a reward tree needs at least one entry')
  const leaves = entries.map((e, i) => ({ hash: leafHash(e.account, e.cumulativeAmount), i }))
  leaves.sort((a, b) => compare(a.hash, b.hash))
  const tree: Uint8Array[] = new Array(2 * n - 1)
  const position = new Map<string, number>()
  for (let k = 0; k < n; k++) {
    const leaf = leaves[k] as { hash: Uint8Array; i: number }
    const at = tree.length - 1 - k
    tree[at] = leaf.hash
    const entry = entries[leaf.i] as CumulativeEntry
    const key = entry.account.toLowerCase()
    if (position.has(key)) throw new RangeError(`account ${getAddress(entry.account)} appears twice`)
    position.set(key, at)
  }
  for (let i = tree.length - 1 - n; i >= 0; i--) {
    tree[i] = hashPair(tree[2 * i + 1] as Uint8Array, tree[2 * i + 2] as Uint8Array)
  }
  const amounts = new Map(entries.map((e) => [e.account.toLowerCase(), e.cumulativeAmount]))
  return {
    root: bytesToHex(tree[0] as Uint8Array),
    size: n,
    proof(account) {
      const key = account.toLowerCase()
      let at = position.get(key)
      if (at === undefined) return undefined
      const proof: Hex[] = []
      while (at > 0) {
        const sibling = at % 2 === 1 ? at + 1 : at - 1
        proof.push(bytesToHex(tree[sibling] as Uint8Array))
        at = Math.floor((at - 1) / 2)
      }
      return { cumulativeAmount: amounts.get(key) as bigint, proof }
    },
  }
}
