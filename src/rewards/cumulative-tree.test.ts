import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import fc from 'fast-check'
import { bytesToHex, getAddress } from 'viem'
import { describe, expect, it } from 'vitest'
import { addPayouts, buildCumulativeTree, type CumulativeEntry } from './cumulative-tree.js'
import { AccountAmounts } from './key-index.js'
import { PARALLEL_LEAVES } from './leaf-hasher.js'

const ENCODING = ['address', 'uint256']
const MAX_UINT256 = (1n << 256n) - 1n

type Address = `0x${string}`

/** A random address, lowercase (what the OZ library and our map key agree on). */
const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => bytesToHex(b) as Address)

/** Full uint256 range; fast-check biases toward small values and the bounds. */
const amount = fc.bigInt({ min: 0n, max: MAX_UINT256 })

/** 1..60 entries with distinct accounts; accounts are given lowercase or checksummed at random. */
const entries = fc
  .uniqueArray(fc.tuple(address, amount, fc.boolean()), {
    minLength: 1,
    maxLength: 60,
    selector: ([a]) => a,
  })
  .map((list) =>
    list.map(
      ([account, cumulativeAmount, checksummed]): CumulativeEntry => ({
        account: checksummed ? getAddress(account) : account,
        cumulativeAmount,
      }),
    ),
  )

function ozTree(list: readonly CumulativeEntry[]) {
  return StandardMerkleTree.of(
    list.map((e) => [e.account.toLowerCase(), e.cumulativeAmount]),
    ENCODING,
  )
}

function leafOf(tree: ReturnType<typeof buildCumulativeTree>, account: Address) {
  const leaf = tree.proof(account)
  if (!leaf) throw new Error(`no leaf for ${account}`)
  return leaf
}

describe('buildCumulativeTree (properties)', () => {
  it('has the root of OpenZeppelin StandardMerkleTree over the same (address, uint256) entries', () => {
    fc.assert(
      fc.property(entries, (list) => {
        const tree = buildCumulativeTree(list)
        expect(tree.root).toBe(ozTree(list).root)
        expect(tree.size).toBe(list.length)
      }),
    )
  })

  it('gives every account a proof that OZ verifies and that equals the OZ proof of that leaf', () => {
    fc.assert(
      fc.property(entries, (list) => {
        const tree = buildCumulativeTree(list)
        const oz = ozTree(list)
        for (const e of list) {
          const leaf = leafOf(tree, e.account)
          expect(leaf.cumulativeAmount).toBe(e.cumulativeAmount)
          expect(
            StandardMerkleTree.verify(
              tree.root,
              ENCODING,
              [e.account.toLowerCase(), e.cumulativeAmount],
              [...leaf.proof],
            ),
          ).toBe(true)
          expect(leaf.proof).toEqual(oz.getProof([e.account.toLowerCase(), e.cumulativeAmount]))
          // By position in the list too, as hex and as raw bytes.
          const at = list.indexOf(e)
          expect(tree.proofAt(at)).toEqual({
            account: e.account,
            cumulativeAmount: e.cumulativeAmount,
            proof: leaf.proof,
          })
          expect(bytesToHex(tree.proofBytesAt(at))).toBe(`0x${leaf.proof.map((h) => h.slice(2)).join('')}`)
          // Into a caller's buffer, at offsets aligned to 8 and 4 bytes and at an unaligned one.
          for (const offset of [0, 8, 4, 3]) {
            const buf = new Uint8Array(offset + 32 * 8)
            const length = tree.proofInto(at, buf, offset)
            expect(buf.subarray(offset, offset + length)).toEqual(tree.proofBytesAt(at))
          }
          // The lookup does not depend on the address's casing.
          expect(tree.proof(getAddress(e.account))).toEqual(leaf)
          expect(tree.proof(e.account.toLowerCase() as Address)).toEqual(leaf)
        }
      }),
      { numRuns: 60 },
    )
  })

  it('has no proof for an account it does not hold, or for something that is not an address', () => {
    const tree = buildCumulativeTree([{ account: `0x${'11'.repeat(20)}`, cumulativeAmount: 5n }])
    expect(tree.proof(`0x${'22'.repeat(20)}`)).toBeUndefined()
    expect(tree.proof('0x1234')).toBeUndefined()
    expect(tree.proof(`0x${'zz'.repeat(20)}`)).toBeUndefined()
    expect(() => tree.proofAt(1)).toThrow(RangeError)
  })

  it('adds an epoch to the cumulative table: every account once, amounts summed', () => {
    fc.assert(
      fc.property(
        entries,
        fc.array(fc.tuple(address, fc.bigInt({ min: 1n, max: 10n ** 30n }))),
        (previous, paid) => {
          const payouts = new AccountAmounts()
          for (const [a, v] of paid) payouts.add(a.toLowerCase() as Address, v)
          const next = addPayouts(previous, payouts)
          const expected = new Map(previous.map((e) => [e.account.toLowerCase(), e.cumulativeAmount]))
          for (const [a, v] of payouts) expected.set(a, (expected.get(a) ?? 0n) + v)
          expect(new Map(next.map((e) => [e.account.toLowerCase(), e.cumulativeAmount]))).toEqual(expected)
          expect(next).toHaveLength(expected.size)
        },
      ),
    )
  })

  it('refuses a proof for a changed amount', () => {
    fc.assert(
      fc.property(entries, fc.nat(), fc.bigInt({ min: 1n, max: MAX_UINT256 }), (list, pick, delta) => {
        const e = list[pick % list.length] as CumulativeEntry
        const tree = buildCumulativeTree(list)
        const { proof } = leafOf(tree, e.account)
        const changed = (e.cumulativeAmount + delta) & MAX_UINT256
        expect(changed).not.toBe(e.cumulativeAmount)
        expect(
          StandardMerkleTree.verify(tree.root, ENCODING, [e.account.toLowerCase(), changed], [...proof]),
        ).toBe(false)
      }),
    )
  })

  it('is deterministic: the same entries in another order give the same root and proofs', () => {
    fc.assert(
      fc.property(
        entries.chain((list) =>
          fc.tuple(
            fc.constant(list),
            fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length }),
          ),
        ),
        ([list, shuffled]) => {
          const a = buildCumulativeTree(list)
          const b = buildCumulativeTree(shuffled)
          expect(b.root).toBe(a.root)
          for (const e of list) expect(b.proof(e.account)).toEqual(a.proof(e.account))
        },
      ),
    )
  })

  it('throws RangeError when an account appears twice, whatever its casing and amount', () => {
    fc.assert(
      fc.property(entries, fc.nat(), fc.nat(), amount, fc.boolean(), (list, pick, at, other, checksummed) => {
        const dup = list[pick % list.length] as CumulativeEntry
        const account = checksummed ? getAddress(dup.account) : (dup.account.toLowerCase() as Address)
        const withDup = [...list]
        withDup.splice(at % (list.length + 1), 0, { account, cumulativeAmount: other })
        expect(() => buildCumulativeTree(withDup)).toThrow(RangeError)
      }),
    )
  })

  it('throws RangeError for an empty list', () => {
    expect(() => buildCumulativeTree([])).toThrow(RangeError)
  })

  it('gives undefined for an account with no leaf', () => {
    fc.assert(
      fc.property(entries, address, (list, stranger) => {
        fc.pre(!list.some((e) => e.account.toLowerCase() === stranger))
        const tree = buildCumulativeTree(list)
        expect(tree.proof(stranger)).toBeUndefined()
        expect(tree.proof(getAddress(stranger))).toBeUndefined()
      }),
    )
  })

  it('hashes a tree deeper than one subtree (subtrees, then the levels above them) into the root OZ builds', () => {
    // 16,390 leaves: the last node is 15 levels down, one more than a subtree holds, so the inner
    // nodes are hashed as two subtrees and the root above them (on one thread: below PARALLEL_LEAVES).
    const n = 16_390
    const list: CumulativeEntry[] = Array.from({ length: n }, (_, i) => ({
      account: `0x${(i * 104_729 + 3).toString(16).padStart(40, '0')}` as Address,
      cumulativeAmount: BigInt(i) * 10n ** 17n + 7n,
    }))
    const tree = buildCumulativeTree(list)
    const oz = ozTree(list)
    expect(tree.root).toBe(oz.root)
    for (let i = 0; i < n; i += 211) {
      const { account, cumulativeAmount, proof } = tree.proofAt(i)
      expect(StandardMerkleTree.verify(tree.root, ENCODING, [account, cumulativeAmount], proof)).toBe(true)
    }
  })

  it('hashes a large tree on two threads into one whose every sampled proof OZ verifies', () => {
    // Above PARALLEL_LEAVES the helper thread hashes the upper part of the leaves and the left
    // subtrees' inner nodes: sample both parts.
    const n = PARALLEL_LEAVES + 4_321
    const list: CumulativeEntry[] = Array.from({ length: n }, (_, i) => ({
      account: `0x${(i * 7_919 + 1).toString(16).padStart(40, '0')}` as Address,
      cumulativeAmount: BigInt(i) * 10n ** 15n + 1n,
    }))
    const tree = buildCumulativeTree(list)
    expect(tree.size).toBe(n)
    for (let i = 0; i < n; i += 997) {
      const { account, cumulativeAmount, proof } = tree.proofAt(i)
      expect(StandardMerkleTree.verify(tree.root, ENCODING, [account, cumulativeAmount], proof)).toBe(true)
    }
    // The same entries in reverse give the same root (one more run through both threads).
    expect(buildCumulativeTree([...list].reverse()).root).toBe(tree.root)
    expect(() =>
      buildCumulativeTree([...list, { ...(list[n - 1] as CumulativeEntry), cumulativeAmount: 5n }]),
    ).toThrow(RangeError)
  })
})
