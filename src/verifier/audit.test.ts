import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { createPeerSigner, createPeerVerifier, type PeerSigner } from '../mesh/peer-key.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import { DEFAULT_REWARD_PARAMS, type RewardParams } from '../rewards/index.js'
import { auditEpoch, type BundleSource } from './audit.js'
import { buildBundle, checkBundle, settleBundle } from './bundle.js'
import type { VerifierChain } from './chain-port.js'
import { UPTIME_OBSERVATION } from './observation.js'

const NET = '31337:0xregistry'
const MESH = 10n ** 18n
const op = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as `0x${string}`

/**
 * Epoch 0 of a network with two nodes (stakes 1,000 and 3,000 MESH), observed by one verifier, built
 * with `used` and posted; `chainParams` is what NetworkParams holds for epoch 0.
 */
async function postedEpoch(
  used: RewardParams,
  chainParams: RewardParams,
  burns: { listed?: Map<string, bigint>; chain?: Map<string, bigint> } = {},
) {
  const v: PeerSigner = createPeerSigner(await generateKeyPair('Ed25519'))
  let seq = 0
  const codec = createWireCodec({
    network: NET,
    signer: v,
    clock: { now: () => 1_700_000_000_000 },
    types: [UPTIME_OBSERVATION],
    nextSeq: () => ++seq,
  })
  const nodes = [
    { peerId: 'n-a', operator: op(1), stake: 1_000n * MESH, registeredEpoch: 0 },
    { peerId: 'n-b', operator: op(2), stake: 3_000n * MESH, registeredEpoch: 0 },
  ]
  const encoded = buildBundle({
    net: NET,
    epoch: 0,
    seed: `0x${'ab'.repeat(32)}`,
    emission: 34_000n * MESH,
    params: used,
    nodes,
    ...(burns.listed === undefined ? {} : { burns: burns.listed }),
    verifiers: [{ peerId: v.peerId, address: op(100) }],
    observations: nodes.map((n) =>
      JSON.parse(
        new TextDecoder().decode(
          codec.encode(UPTIME_OBSERVATION, { epoch: 0, node: n.peerId, challenges: 10, answered: 10 }).bytes,
        ),
      ),
    ),
    carried: { root: null, entries: [] },
  })
  const checked = checkBundle(encoded.bytes, {
    network: NET,
    verifier: createPeerVerifier(),
    previousRoot: null,
  })
  if (!checked.ok) throw new Error(checked.fault)
  const settled = settleBundle(checked.bundle)
  const chain: Pick<VerifierChain, 'postedRoots' | 'paramsAt' | 'firstBlockAtOrAfter' | 'paymentFees'> = {
    firstBlockAtOrAfter: async (timestamp) => ({ number: BigInt(timestamp), hash: '0x00', timestamp }),
    paymentFees: async () => burns.chain ?? new Map(),
    postedRoots: async () =>
      new Map([
        [
          0,
          {
            root: settled.root,
            digest: encoded.digest,
            totalCumulative: settled.totalCumulative,
            block: 10n,
          },
        ],
      ]),
    paramsAt: async () => chainParams,
  }
  const source: BundleSource = { name: 'memory', fetch: async () => encoded.bytes }
  return { chain, source, settled }
}

/** The defaults as sets made before certified hardware: the stake cap binds every node, as these tests need. */
const { hardware: _hardware, ...UNCERTIFIED } = DEFAULT_REWARD_PARAMS

describe('auditing a posted epoch against the chain’s parameters', () => {
  const capped: RewardParams = {
    ...UNCERTIFIED,
    version: 2,
    uptime: { ...UNCERTIFIED.uptime, stakeCap: 1_000n * MESH },
  }

  it('matches when the bundle used the set NetworkParams holds for its epoch', async () => {
    const { chain, source, settled } = await postedEpoch(capped, capped)
    const audit = await auditEpoch(0, {
      chain,
      sources: [source],
      network: NET,
      verifier: createPeerVerifier(),
    })
    expect(audit.matches).toBe(true)
    expect(audit.params).toMatchObject({ difference: undefined, chain: { version: 2 } })
    expect(audit.settlement.root).toBe(settled.root)
    // Version 2 caps stake at 1,000 MESH: both nodes earn the same.
    expect(audit.settlement.rewards.payouts.get(op(1))).toBe(audit.settlement.rewards.payouts.get(op(2)))
  })

  it('does not match when the bundle used another set, and recomputes with the chain’s', async () => {
    // The posted root was computed with version 1 (stake counts up to 10,000 MESH); the chain holds
    // version 2 for the epoch.
    const { chain, source, settled } = await postedEpoch(UNCERTIFIED, capped)
    const audit = await auditEpoch(0, {
      chain,
      sources: [source],
      network: NET,
      verifier: createPeerVerifier(),
    })
    expect(audit.matches).toBe(false)
    expect(audit.params.difference).toBe("version 1, the chain's 2")
    expect(audit.params.bundle.version).toBe(1)
    expect(audit.settlement.rewards.paramsVersion).toBe(2)
    expect(audit.settlement.root).not.toBe(settled.root)
    expect(audit.settlement.rewards.payouts.get(op(1))).toBe(audit.settlement.rewards.payouts.get(op(2)))
    expect(settled.rewards.payouts.get(op(2))).toBe(3n * (settled.rewards.payouts.get(op(1)) ?? 0n))
  })

  it('does not match when the bundle lists payment fees the chain never burned (they cap compute rewards)', async () => {
    const listed = new Map([[op(1), 5n * MESH]])
    const schedule = { genesisTime: 1_700_000_000, epochDuration: 60 }
    const honest = await postedEpoch(UNCERTIFIED, UNCERTIFIED, { listed, chain: listed })
    const ctx = (chain: typeof honest.chain, source: BundleSource) => ({
      chain,
      schedule,
      sources: [source],
      network: NET,
      verifier: createPeerVerifier(),
    })
    const fine = await auditEpoch(0, ctx(honest.chain, honest.source))
    expect(fine.burns.difference).toBeUndefined()
    expect(fine.matches).toBe(true)
    const forged = await postedEpoch(UNCERTIFIED, UNCERTIFIED, { listed })
    const audit = await auditEpoch(0, ctx(forged.chain, forged.source))
    expect(audit.burns.difference).toBe(`${op(1)}: the bundle says ${5n * MESH} burned, the chain 0`)
    expect(audit.matches).toBe(false)
  })
})
