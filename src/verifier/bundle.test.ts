import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { canonicalJson } from '../core/canonical-json.js'
import { createPeerSigner, createPeerVerifier, type PeerSigner } from '../mesh/peer-key.js'
import { createWireCodec, type SignedEnvelope } from '../mesh/wire-codec.js'
import type { RewardParams } from '../rewards/index.js'
import {
  type BundleParts,
  buildBundle,
  bundleCid,
  checkBundle,
  paramsDifference,
  settleBundle,
} from './bundle.js'
import { COMPUTE_OBSERVATION, UPTIME_OBSERVATION, type UptimeObservationBody } from './observation.js'

const NET = '31337:0xregistry'
const MESH = 10n ** 18n
const SEED = `0x${'ab'.repeat(32)}`
const params: RewardParams = {
  version: 1,
  serviceWeightsBps: { uptime: 4_000, compute: 3_000, storage: 2_000, relay: 500, sensor: 500 },
  uptime: { thresholdPpm: 500_000, stakeCap: 10_000n * MESH, vettingEpochs: 0, vettingFactorBps: 5_000 },
  sensor: { cellCapacity: 5 },
}
const op = (n: number) => `0x${n.toString(16).padStart(40, '0')}`

async function setup() {
  const verifiers: PeerSigner[] = []
  for (let i = 0; i < 3; i++) verifiers.push(createPeerSigner(await generateKeyPair('Ed25519')))
  const stranger = createPeerSigner(await generateKeyPair('Ed25519'))
  const seqs = new Map<string, number>()
  const observe = (
    v: PeerSigner,
    epoch: number,
    node: string,
    answered: number,
  ): SignedEnvelope<UptimeObservationBody> => {
    const codec = createWireCodec({
      network: NET,
      signer: v,
      clock: { now: () => 1_700_000_000_000 },
      types: [UPTIME_OBSERVATION],
      nextSeq: () => {
        const next = (seqs.get(v.peerId) ?? 0) + 1
        seqs.set(v.peerId, next)
        return next
      },
    })
    return JSON.parse(
      new TextDecoder().decode(
        codec.encode(UPTIME_OBSERVATION, { epoch, node, challenges: 10, answered }).bytes,
      ),
    )
  }
  const nodes = ['n-a', 'n-b', 'n-c'].map((peerId, i) => ({
    peerId,
    operator: op(i + 1),
    stake: 1_000n * MESH,
    registeredEpoch: 0,
  }))
  const parts = (epoch: number, answered: number[], carried: BundleParts['carried']): BundleParts => ({
    net: NET,
    epoch,
    seed: SEED,
    emission: 34_000n * MESH,
    params,
    nodes,
    verifiers: verifiers.map((v, i) => ({ peerId: v.peerId, address: op(100 + i) })),
    observations: verifiers.flatMap((v) =>
      nodes.map((n, i) => observe(v, epoch, n.peerId, answered[i] ?? 0)),
    ),
    carried,
  })
  return { verifiers, stranger, observe, parts, verifier: createPeerVerifier() }
}

const check = (bytes: Uint8Array, previousRoot: string | null) =>
  checkBundle(bytes, { network: NET, verifier: createPeerVerifier(), previousRoot })

describe('epoch bundles', () => {
  it('round-trips: built, checked by anyone, settled to the same root over two epochs', async () => {
    const s = await setup()
    const first = buildBundle(s.parts(0, [10, 5, 2], { root: null, entries: [] }))
    expect(first.cid).toBe(bundleCid(first.digest))
    const checked = check(first.bytes, null)
    if (!checked.ok) throw new Error(checked.fault)
    const settled = settleBundle(checked.bundle)
    // Scores 1.0 and 0.5 share the epoch 2:1; the third is below the threshold.
    expect(settled.entries.map((e) => [e.account, e.cumulativeAmount])).toEqual([
      [op(1), (34_000n * MESH * 2n) / 3n],
      [op(2), (34_000n * MESH) / 3n],
    ])
    expect(settled.totalCumulative).toBe(settled.rewards.total)

    const second = buildBundle(s.parts(1, [10, 10, 10], { root: settled.root, entries: settled.entries }))
    const again = check(second.bytes, settled.root)
    if (!again.ok) throw new Error(again.fault)
    const next = settleBundle(again.bundle)
    expect(next.totalCumulative).toBe(settled.totalCumulative + next.rewards.total)
    expect(next.tree.proof(op(3) as `0x${string}`)?.cumulativeAmount).toBe(next.rewards.payouts.get(op(3)))
  })

  it('is canonical: the same parts in any order give the same bytes and CID; stale, foreign and duplicate observations are left out', async () => {
    const s = await setup()
    const parts = s.parts(4, [10, 9, 8], { root: null, entries: [] })
    const a = buildBundle(parts)
    const noisy = buildBundle({
      ...parts,
      nodes: [...parts.nodes].reverse(),
      verifiers: [...parts.verifiers].reverse(),
      observations: [
        s.observe(s.stranger, 4, 'n-a', 10), // not a verifier of this epoch
        s.observe(s.verifiers[0] as PeerSigner, 3, 'n-a', 10), // another epoch
        ...[...parts.observations].reverse(),
      ],
    })
    expect(noisy.cid).toBe(a.cid)
    // A later observation of the same node by the same verifier replaces the earlier one.
    const updated = buildBundle({
      ...parts,
      observations: [...parts.observations, s.observe(s.verifiers[0] as PeerSigner, 4, 'n-c', 0)],
    })
    expect(updated.cid).not.toBe(a.cid)
    expect(updated.bundle.observations).toHaveLength(9)
  })

  it('refuses a tampered, reordered, re-spaced, foreign or mis-carried bundle', async () => {
    const s = await setup()
    const good = buildBundle(s.parts(0, [10, 5, 2], { root: null, entries: [] }))
    const faultOf = (bytes: Uint8Array, previousRoot: string | null = null) => {
      const r = check(bytes, previousRoot)
      return r.ok ? 'ok' : r.fault
    }
    expect(faultOf(good.bytes)).toBe('ok')
    // An observation's count changed after signing.
    const tampered = structuredClone(good.bundle)
    ;(tampered.observations[0] as { body: { answered: number } }).body.answered = 0
    const { canonicalJson } = await import('../core/canonical-json.js')
    expect(faultOf(new TextEncoder().encode(canonicalJson(tampered)))).toBe('bad_observation')
    // Two nodes swapped.
    const swapped = structuredClone(good.bundle)
    swapped.nodes.reverse()
    expect(faultOf(new TextEncoder().encode(canonicalJson(swapped)))).toBe('not_sorted')
    // The same content with whitespace: another digest for the same content is refused.
    expect(faultOf(new TextEncoder().encode(JSON.stringify(good.bundle, null, 1)))).toBe('not_canonical')
    // Another network, and a carried table that is not the previous root's.
    const foreign = structuredClone(good.bundle)
    foreign.net = '1:0xother'
    expect(faultOf(new TextEncoder().encode(canonicalJson(foreign)))).toBe('wrong_network')
    expect(faultOf(good.bytes, `0x${'11'.repeat(32)}`)).toBe('carried_root_mismatch')
    expect(faultOf(new TextEncoder().encode('{"v":1}'))).toBe('malformed')
    // Rebuilt from its own observations, a bundle comes out byte for byte the same.
    const rebuilt = buildBundle({
      ...s.parts(0, [], { root: null, entries: [] }),
      observations: good.bundle.observations as SignedEnvelope<UptimeObservationBody>[],
    })
    expect(rebuilt.bytes).toEqual(good.bytes)
  })
})

describe('epoch bundles and the chain’s parameter set', () => {
  const raised: RewardParams = { ...params, version: 2, uptime: { ...params.uptime, thresholdPpm: 900_000 } }

  it('record the set they were built with, version included, and settle with it', async () => {
    const s = await setup()
    const built = buildBundle({ ...s.parts(3, [10, 8, 10], { root: null, entries: [] }), params: raised })
    expect(built.bundle.params).toMatchObject({ version: 2, uptime: { thresholdPpm: 900_000 } })
    const checked = checkBundle(built.bytes, {
      network: NET,
      verifier: s.verifier,
      previousRoot: null,
      params: raised,
    })
    if (!checked.ok) throw new Error(checked.fault)
    expect(checked.bundle.params).toEqual(raised)
    // 8 of 10 is below the raised threshold: n-b earns nothing, the two others share the pool.
    const paid = settleBundle(checked.bundle).rewards.payouts
    expect(paid.get(op(2))).toBeUndefined()
    expect(paid.get(op(1))).toBe(paid.get(op(3)))
  })

  it('list the epoch’s burned payment fees with a rebate cap (merged, sorted), feed them to the reward function, and are refused without them', async () => {
    const s = await setup()
    const capped = { ...params, compute: { rebateBps: 9_000 } }
    const burns = new Map([
      [op(0xab).replace('ab', 'AB'), 5n],
      [op(1), 7n],
      [op(0xab), 1n],
      [op(2), 0n],
    ])
    const built = buildBundle({
      ...s.parts(3, [10, 8, 10], { root: null, entries: [] }),
      params: capped,
      burns,
    })
    expect(built.bundle.burns).toEqual([
      [op(1), '7'],
      [op(0xab), '6'],
    ])
    const checked = checkBundle(built.bytes, {
      network: NET,
      verifier: s.verifier,
      previousRoot: null,
      params: capped,
    })
    if (!checked.ok) throw new Error(checked.fault)
    expect(checked.bundle.input.burned).toEqual([
      [op(1), 7n],
      [op(0xab), 6n],
    ])
    // A leader that drops the list, or lists burns without a cap, makes a malformed bundle.
    const { burns: _dropped, ...rest } = built.bundle
    const without = new TextEncoder().encode(canonicalJson(rest))
    expect(checkBundle(without, { network: NET, verifier: s.verifier, previousRoot: null })).toMatchObject({
      ok: false,
      fault: 'malformed',
    })
  })

  it('carry the work rebate cap with its burns, and are refused with both rebate caps or a different one', async () => {
    const s = await setup()
    const work = { ...params, work: { rebateBps: 9_000 } }
    const built = buildBundle({
      ...s.parts(3, [10, 8, 10], { root: null, entries: [] }),
      params: work,
      burns: new Map([[op(1), 7n]]),
    })
    expect(built.bundle.params.work).toEqual({ rebateBps: 9_000 })
    const check = (bytes: Uint8Array, chain?: RewardParams) =>
      checkBundle(bytes, {
        network: NET,
        verifier: s.verifier,
        previousRoot: null,
        ...(chain === undefined ? {} : { params: chain }),
      })
    const checked = check(built.bytes, work)
    if (!checked.ok) throw new Error(checked.fault)
    expect(checked.bundle.input.burned).toEqual([[op(1), 7n]])
    expect(settleBundle(checked.bundle).rewards.paramsVersion).toBe(1)
    expect(check(built.bytes, { ...params, work: { rebateBps: 5_000 } })).toEqual({
      ok: false,
      fault: 'params_mismatch',
      detail: "work.rebateBps 9000, the chain's 5000",
    })
    const both = { ...built.bundle, params: { ...built.bundle.params, compute: { rebateBps: 9_000 } } }
    expect(check(new TextEncoder().encode(canonicalJson(both)))).toMatchObject({
      ok: false,
      fault: 'malformed',
    })
  })

  it('are refused (params_mismatch) when their set is not the chain’s: another version, or the same version with other values', async () => {
    const s = await setup()
    const built = buildBundle(s.parts(3, [10, 8, 10], { root: null, entries: [] }))
    const against = (chain: RewardParams) =>
      checkBundle(built.bytes, { network: NET, verifier: s.verifier, previousRoot: null, params: chain })
    expect(against(params).ok).toBe(true)
    expect(against(raised)).toEqual({
      ok: false,
      fault: 'params_mismatch',
      detail: "version 1, the chain's 2",
    })
    expect(against({ ...params, uptime: { ...params.uptime, stakeCap: 1_000n * MESH } })).toEqual({
      ok: false,
      fault: 'params_mismatch',
      detail: `uptime.stakeCap ${10_000n * MESH}, the chain's ${1_000n * MESH}`,
    })
    expect(
      against({
        ...params,
        serviceWeightsBps: { ...params.serviceWeightsBps, uptime: 3_000, compute: 4_000 },
      }),
    ).toMatchObject({ fault: 'params_mismatch', detail: "serviceWeightsBps.uptime 4000, the chain's 3000" })
    // Without a set to compare with (an old bundle settled only to rebuild its posted table), any set checks.
    expect(check(built.bytes, null).ok).toBe(true)
  })

  it('paramsDifference names nothing for equal sets and the first differing field otherwise', () => {
    expect(paramsDifference(params, { ...params, uptime: { ...params.uptime } })).toBeUndefined()
    expect(paramsDifference(params, { ...params, uptime: { ...params.uptime, vettingEpochs: 3 } })).toBe(
      "uptime.vettingEpochs 0, the chain's 3",
    )
  })

  it('record the hardware group (approved makers in the chain’s order, linear share) and read it back; one made before it has none', async () => {
    const s = await setup()
    const [a, b, c] = s.verifiers.map((v) => v.peerId) as [string, string, string]
    const certified: RewardParams = { ...params, version: 3, hardware: { makers: [b, a], linearBps: 4_000 } }
    const built = buildBundle({ ...s.parts(3, [10, 8, 10], { root: null, entries: [] }), params: certified })
    expect(built.bundle.params.hardware).toEqual({ makers: [b, a], linearBps: 4_000 })
    const against = (chain: RewardParams) =>
      checkBundle(built.bytes, { network: NET, verifier: s.verifier, previousRoot: null, params: chain })
    const checked = against(certified)
    if (!checked.ok) throw new Error(`${checked.fault} ${checked.detail}`)
    expect(checked.bundle.params).toEqual(certified)

    // The chain's set differs in the share, in a maker, or in the makers' order: refused, and said how.
    const other = (hardware: NonNullable<RewardParams['hardware']>) => against({ ...certified, hardware })
    expect(other({ makers: [b, a], linearBps: 5_000 })).toMatchObject({
      fault: 'params_mismatch',
      detail: "hardware.linearBps 4000, the chain's 5000",
    })
    expect(other({ makers: [b], linearBps: 4_000 })).toMatchObject({
      detail: `hardware.makers lists ${a}, the chain's does not`,
    })
    expect(other({ makers: [b, a, c], linearBps: 4_000 })).toMatchObject({
      detail: `hardware.makers lacks ${c}, which the chain's lists`,
    })
    expect(other({ makers: [a, b], linearBps: 4_000 })).toMatchObject({
      detail: "hardware.makers in another order than the chain's",
    })
    const { hardware: _none, ...plain } = certified
    expect(against(plain)).toMatchObject({ detail: "hardware.linearBps 4000, the chain's undefined" })

    // A bundle built before certified hardware records no group, checks against such a set, and is
    // refused against a set that has one.
    const before = buildBundle(s.parts(3, [10, 8, 10], { root: null, entries: [] }))
    expect(before.bundle.params).not.toHaveProperty('hardware')
    const old = checkBundle(before.bytes, { network: NET, verifier: s.verifier, previousRoot: null, params })
    if (!old.ok) throw new Error(old.fault)
    expect(old.bundle.params).not.toHaveProperty('hardware')
    expect(paramsDifference(params, { ...params, hardware: { makers: [], linearBps: 4_000 } })).toBe(
      "hardware.linearBps undefined, the chain's 4000",
    )
  })
})

describe('epoch bundles with compute observations', () => {
  it('carry verifiers’ compute observations, in canonical order, into the compute pool; a forged one fails the check', async () => {
    const s = await setup()
    let seq = 100
    const computeBy = (v: PeerSigner, node: string, value: bigint, fraud = false) =>
      JSON.parse(
        new TextDecoder().decode(
          createWireCodec({
            network: NET,
            signer: v,
            clock: { now: () => 1_700_000_000_000 },
            types: [COMPUTE_OBSERVATION],
            nextSeq: () => ++seq,
          }).encode(COMPUTE_OBSERVATION, { epoch: 2, node, jobs: 3, value: value.toString(), fraud }).bytes,
        ),
      ) as BundleParts['observations'][number]
    const base = s.parts(2, [10, 10, 10], { root: null, entries: [] })
    const compute = s.verifiers.flatMap((v) => [
      computeBy(v, 'n-a', 3n * MESH),
      computeBy(v, 'n-b', MESH, true),
    ])
    const built = buildBundle({ ...base, observations: [...compute.reverse(), ...base.observations] })
    const again = buildBundle({ ...base, observations: [...base.observations, ...compute.reverse()] })
    expect(again.cid).toBe(built.cid)
    const checked = check(built.bytes, null)
    if (!checked.ok) throw new Error(checked.fault)
    const settled = settleBundle(checked.bundle)
    expect(settled.rewards.compute.map((c) => [c.peerId, c.value, c.fraud])).toEqual([
      ['n-a', 3n * MESH, false],
      ['n-b', 0n, true],
    ])
    expect(settled.rewards.payouts.get(op(1))).toBe(
      settled.rewards.pools.compute + settled.rewards.pools.uptime / 3n,
    )

    // A compute observation whose value was raised after signing.
    const forged = JSON.parse(new TextDecoder().decode(built.bytes))
    const at = forged.observations.findIndex((o: { type: string }) => o.type === COMPUTE_OBSERVATION.type)
    forged.observations[at].body.value = (1_000n * MESH).toString()
    const bytes = new TextEncoder().encode(canonicalJson(forged))
    expect(check(bytes, null)).toMatchObject({ ok: false, fault: 'bad_observation' })
  })
})
