import fc from 'fast-check'
import { cellToParent, latLngToCell } from 'h3-js'
import { describe, expect, it } from 'vitest'
import {
  type BandwidthObservation,
  type ComputeObservation,
  cellKey,
  cellOfKey,
  computeEpochRewards,
  PPM,
  type RewardInput,
  type RewardNode,
  type RewardParams,
  type SensorObservation,
  type StorageObservation,
  UPTIME_CELL_RESOLUTION,
  type UptimeObservation,
  validateRewardParams,
} from './reward-function.js'

const MESH = 10n ** 18n
const params: RewardParams = {
  version: 1,
  serviceWeightsBps: { uptime: 4_000, compute: 3_000, storage: 2_000, relay: 500, sensor: 500 },
  uptime: { thresholdPpm: 500_000, stakeCap: 10_000n * MESH, vettingEpochs: 3, vettingFactorBps: 5_000 },
  sensor: { cellCapacity: 5 },
}
const op = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as `0x${string}`
const node = (i: number, extra: Partial<RewardNode> = {}): RewardNode => ({
  peerId: `node-${String(i).padStart(3, '0')}`,
  operator: op(i + 1),
  stake: 1_000n * MESH,
  registeredEpoch: 0,
  ...extra,
})
const VERIFIERS = ['v-a', 'v-b', 'v-c']
/** Every verifier observed every node with `answered[i]` of 10 challenges answered. */
function input(nodes: RewardNode[], answered: number[], extra: Partial<RewardInput> = {}): RewardInput {
  const uptime: UptimeObservation[] = []
  for (const verifier of VERIFIERS) {
    for (const [i, n] of nodes.entries()) {
      uptime.push({ verifier, node: n.peerId, challenges: 10, answered: answered[i] ?? 0 })
    }
  }
  return { epoch: 10, emission: 34_000n * MESH, nodes, verifiers: VERIFIERS, uptime, ...extra }
}

describe('computeEpochRewards (examples)', () => {
  it('gives the whole emission to uptime while only uptime has contributors, split by uptime', () => {
    const r = computeEpochRewards(input([node(0), node(1)], [10, 5]), params)
    expect(r.pools.uptime).toBe(34_000n * MESH)
    expect(r.pools.compute).toBe(0n)
    // Scores 1.0 and 0.5 at equal stake: two thirds and one third.
    expect(r.payouts.get(op(1))).toBe((34_000n * MESH * 2n) / 3n)
    expect(r.payouts.get(op(2))).toBe((34_000n * MESH) / 3n)
    expect(r.total + r.dust).toBe(r.emission)
    expect(r.dust).toBeLessThan(2n)
  })

  it('pays nothing below the threshold, or to a node no verifier heard', () => {
    const nodes = [node(0), node(1), node(2)]
    const r = computeEpochRewards(
      { ...input(nodes, [10, 4]), uptime: input(nodes, [10, 4]).uptime.filter((o) => o.node !== 'node-002') },
      params,
    )
    expect([...r.payouts.keys()]).toEqual([op(1)])
    expect(r.uptime.list().map((u) => [u.scorePpm, u.eligible])).toEqual([
      [1_000_000, true],
      [400_000, false],
      [0, false],
    ])
  })

  it('caps the stake weight and halves a node being vetted', () => {
    const whale = node(0, { stake: 1_000_000n * MESH })
    const capped = node(1, { stake: 10_000n * MESH })
    const fresh = node(2, { stake: 10_000n * MESH, registeredEpoch: 9 })
    const r = computeEpochRewards(input([whale, capped, fresh], [10, 10, 10]), params)
    expect(r.payouts.get(op(1))).toBe(r.payouts.get(op(2)))
    expect(r.uptime.list()[2]?.vetting).toBe(true)
    expect(r.payouts.get(op(3))).toBe((r.pools.uptime * 1n) / 5n)
  })

  it('takes the median across verifiers, so one verifier cannot lift or sink a node', () => {
    const nodes = [node(0), node(1)]
    const obs: UptimeObservation[] = [
      { verifier: 'v-a', node: 'node-000', challenges: 10, answered: 10 },
      { verifier: 'v-b', node: 'node-000', challenges: 10, answered: 0 }, // a lying verifier
      { verifier: 'v-c', node: 'node-000', challenges: 10, answered: 9 },
      { verifier: 'v-a', node: 'node-001', challenges: 10, answered: 0 },
      { verifier: 'v-b', node: 'node-001', challenges: 10, answered: 10 }, // a friend of node-001
      { verifier: 'v-c', node: 'node-001', challenges: 10, answered: 0 },
    ]
    const r = computeEpochRewards({ ...input(nodes, []), uptime: obs }, params)
    expect(r.uptime.list().map((u) => u.scorePpm)).toEqual([900_000, 0])
    expect([...r.payouts.keys()]).toEqual([op(1)])
    // The explanation a node's operator sees.
    expect(r.uptime.explain('node-000')).toMatchObject({
      verifiers: [
        { verifier: 'v-a', challenges: 10, answered: 10, fractionPpm: 1_000_000 },
        { verifier: 'v-b', challenges: 10, answered: 0, fractionPpm: 0 },
        { verifier: 'v-c', challenges: 10, answered: 9, fractionPpm: 900_000 },
      ],
      scorePpm: 900_000,
      eligible: true,
      reward: r.emission,
    })
    expect(r.uptime.explain('stranger')).toBeUndefined()
  })

  it('counts 0 for a verifier that observed others but skipped a node, and ignores one that observed nothing', () => {
    const nodes = [node(0), node(1)]
    const obs: UptimeObservation[] = [
      { verifier: 'v-a', node: 'node-000', challenges: 10, answered: 10 },
      { verifier: 'v-a', node: 'node-001', challenges: 10, answered: 10 },
      { verifier: 'v-b', node: 'node-000', challenges: 10, answered: 10 },
      // v-b skipped node-001; v-c was down and observed nothing.
    ]
    const r = computeEpochRewards({ ...input(nodes, []), uptime: obs }, params)
    expect(r.uptime.list()[0]?.verifiers.map((v) => v.verifier)).toEqual(['v-a', 'v-b'])
    expect(r.uptime.list().map((u) => u.scorePpm)).toEqual([1_000_000, 500_000])
  })

  it('ignores observations of unknown verifiers and impossible counts', () => {
    const nodes = [node(0)]
    const obs: UptimeObservation[] = [
      { verifier: 'mallory', node: 'node-000', challenges: 10, answered: 10 },
      { verifier: 'v-a', node: 'node-000', challenges: 10, answered: 11 },
      { verifier: 'v-b', node: 'node-000', challenges: 0, answered: 0 },
    ]
    const r = computeEpochRewards({ ...input(nodes, []), uptime: obs }, params)
    expect(r.total).toBe(0n)
    expect(r.dust).toBe(r.emission)
  })

  it('computes the worked example of docs/rewards.md', () => {
    const defaults: RewardParams = { ...params, uptime: { ...params.uptime, vettingEpochs: 3 } }
    const at = (c: string) => `0x${c.repeat(40)}` as `0x${string}`
    const nodes: RewardNode[] = [
      { peerId: 'A', operator: at('a'), stake: 5_000n * MESH, registeredEpoch: 0 },
      { peerId: 'B', operator: at('b'), stake: 5_000n * MESH, registeredEpoch: 0 },
      { peerId: 'C', operator: at('c'), stake: 50_000n * MESH, registeredEpoch: 0 },
      { peerId: 'D', operator: at('d'), stake: 10_000n * MESH, registeredEpoch: 9 },
      { peerId: 'E', operator: at('e'), stake: 10_000n * MESH, registeredEpoch: 0 },
    ]
    const answers: Record<string, number[]> = {
      A: [12, 12, 11],
      B: [6, 7, 6],
      C: [12, 12, 12],
      D: [12, 12, 12],
      E: [5, 12, 4],
    }
    const uptime = ['v1', 'v2', 'v3'].flatMap((verifier, v) =>
      nodes.map((n) => ({ verifier, node: n.peerId, challenges: 12, answered: answers[n.peerId]?.[v] ?? 0 })),
    )
    const r = computeEpochRewards(
      { epoch: 10, emission: 34_000n * MESH, nodes, verifiers: ['v1', 'v2', 'v3'], uptime },
      defaults,
    )
    expect(r.uptime.list().map((u) => u.scorePpm)).toEqual([
      1_000_000, 500_000, 1_000_000, 1_000_000, 416_666,
    ])
    expect([...r.payouts].sort(([a], [b]) => (a < b ? -1 : 1))).toEqual([
      [at('a'), 7_555_555555555555555555n],
      [at('b'), 3_777_777777777777777777n],
      [at('c'), 15_111_111111111111111111n],
      [at('d'), 7_555_555555555555555555n],
    ])
    expect(r.dust).toBe(2n)
  })

  it('reads counts wider than 16 bits as small ones (same fractions, same pay)', () => {
    const nodes = [node(0, { cell: '872830828ffffff' }), node(1, { cell: '872830828ffffff' })]
    const epoch = (scale: number, far: number): RewardInput => ({
      ...input(nodes, []),
      uptime: VERIFIERS.flatMap((verifier) =>
        nodes.map((n, i) => ({
          verifier,
          node: n.peerId,
          challenges: 4 * scale,
          answered: (i === 0 ? 4 : 3) * scale,
          probe: { rttMs: far, distanceKm: far },
        })),
      ),
    })
    const small = computeEpochRewards(epoch(1, 50), params)
    const wide = computeEpochRewards(epoch(25_000, 70_000), params)
    expect(small.payouts.size).toBe(2)
    expect(small.uptime.explain('node-001')?.ruledOut).toBe(false)
    expect([...wide.payouts]).toEqual([...small.payouts])
    expect(wide.uptime.explain('node-001')?.verifiers[0]).toMatchObject({
      challenges: 100_000,
      answered: 75_000,
    })
  })

  it('refuses an epoch that lists a node twice, naming it', () => {
    const nodes = [node(0), node(1), node(2), node(1), node(0)]
    expect(() => computeEpochRewards(input(nodes, [10, 10, 10, 10, 10]), params)).toThrow(
      /node node-001 is listed twice/,
    )
  })

  it('refuses parameters whose weights do not sum to 100%', () => {
    expect(() =>
      validateRewardParams({ ...params, serviceWeightsBps: { ...params.serviceWeightsBps, uptime: 3_999 } }),
    ).toThrow(/sum to 10000/)
    expect(() => validateRewardParams({ ...params, uptime: { ...params.uptime, stakeCap: 0n } })).toThrow(
      /stakeCap/,
    )
  })
})

// Properties

const arbNodes = fc
  .array(
    fc.record({
      operator: fc.integer({ min: 1, max: 12 }),
      stake: fc.bigInt({ min: 1n, max: 50_000n * MESH }),
      registeredEpoch: fc.integer({ min: 0, max: 10 }),
    }),
    { minLength: 1, maxLength: 25 },
  )
  .map((ns) =>
    ns.map((n, i) =>
      node(i, { operator: op(n.operator), stake: n.stake, registeredEpoch: n.registeredEpoch }),
    ),
  )

const arbCase = arbNodes.chain((nodes) =>
  fc.record({
    nodes: fc.constant(nodes),
    emission: fc.bigInt({ min: 0n, max: 10n ** 30n }),
    // Per verifier and node: undefined (not observed) or answered of challenges.
    matrix: fc.array(
      fc.array(
        fc.option(fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 40 })), {
          nil: undefined,
        }),
        {
          minLength: nodes.length,
          maxLength: nodes.length,
        },
      ),
      { minLength: 1, maxLength: 5 },
    ),
  }),
)

interface Case {
  nodes: RewardNode[]
  emission: bigint
  matrix: ([number, number] | undefined)[][]
}

function caseInput(c: Case): RewardInput {
  const verifiers = c.matrix.map((_, v) => `v-${v}`)
  const uptime: UptimeObservation[] = []
  for (const [v, row] of c.matrix.entries()) {
    for (const [i, cell] of row.entries()) {
      if (cell === undefined) continue
      const [challenges, answered] = cell
      uptime.push({
        verifier: `v-${v}`,
        node: (c.nodes[i] as RewardNode).peerId,
        challenges,
        answered: Math.min(answered, challenges),
      })
    }
  }
  return { epoch: 10, emission: c.emission, nodes: c.nodes, verifiers, uptime }
}

describe('computeEpochRewards (properties)', () => {
  it('conserves the emission: payouts plus dust are the emission, dust below the operators with weight', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const r = computeEpochRewards(caseInput(c), params)
        expect(r.total + r.dust).toBe(c.emission)
        expect(r.dust).toBeGreaterThanOrEqual(0n)
        // One rounding per operator with weight: the dust is below their number (or all of the
        // emission when nobody earned anything).
        const earning = new Set(
          r.uptime
            .list()
            .filter((u) => u.weight > 0n)
            .map((u) => u.operator),
        ).size
        if (earning > 0) expect(r.dust).toBeLessThan(BigInt(earning))
        else expect(r.dust).toBe(c.emission)
        let sum = 0n
        for (const v of r.payouts.values()) {
          expect(v).toBeGreaterThan(0n)
          sum += v
        }
        expect(sum).toBe(r.total)
      }),
      { numRuns: 300 },
    )
  })

  it('is monotonic: answering one more challenge to an observing verifier never pays an operator less', () => {
    fc.assert(
      fc.property(arbCase, fc.nat(), fc.nat(), (c, pickV, pickN) => {
        const v = pickV % c.matrix.length
        const n = pickN % c.nodes.length
        const row = c.matrix[v] as ([number, number] | undefined)[]
        const cell = row[n]
        // The verifier observed this epoch (else a first observation changes who the observers are).
        fc.pre(row.some((x) => x !== undefined))
        const [challenges, answered] = cell ?? [10, 0]
        fc.pre(Math.min(answered, challenges) < challenges)
        const better = c.matrix.map((row) => [...row])
        ;(better[v] as ([number, number] | undefined)[])[n] = [challenges, Math.min(answered, challenges) + 1]
        const operator = (c.nodes[n] as RewardNode).operator
        const before = computeEpochRewards(caseInput(c), params).payouts.get(operator) ?? 0n
        const after =
          computeEpochRewards(caseInput({ ...c, matrix: better }), params).payouts.get(operator) ?? 0n
        expect(after).toBeGreaterThanOrEqual(before)
      }),
      { numRuns: 300 },
    )
  })

  it('is monotonic with crowded cells too: a node answering more never lowers its operator’s pay beyond rounding (10^-17 of the emission), the cell cap binding, nodes past vetting', () => {
    const cells = ['871f1d489ffffff', '871fb4662ffffff']
    const capped: RewardParams = {
      ...params,
      uptime: { ...params.uptime, cellStakeCap: params.uptime.stakeCap },
    }
    const placed = (c: Case): Case => ({
      ...c,
      // Stakes of at least 1 MESH (the registry's minimum is 1,000), past vetting (see docs/rewards.md:
      // a vetted node takes its whole stake's room in its cell, and earns half).
      nodes: c.nodes.map((n, i) => ({
        ...n,
        stake: n.stake + MESH,
        registeredEpoch: 0,
        cell: cells[i % 2] as string,
      })),
    })
    fc.assert(
      fc.property(arbCase, fc.nat(), fc.nat(), (c, pickV, pickN) => {
        const v = pickV % c.matrix.length
        const n = pickN % c.nodes.length
        const row = c.matrix[v] as ([number, number] | undefined)[]
        fc.pre(row.some((x) => x !== undefined))
        const [challenges, answered] = row[n] ?? [10, 0]
        fc.pre(Math.min(answered, challenges) < challenges)
        const better = c.matrix.map((r) => [...r])
        ;(better[v] as ([number, number] | undefined)[])[n] = [challenges, Math.min(answered, challenges) + 1]
        const operator = (c.nodes[n] as RewardNode).operator
        const before = computeEpochRewards(caseInput(placed(c)), capped)
        const after = computeEpochRewards(caseInput(placed({ ...c, matrix: better })), capped)
        // Up to rounding: a scaled stake weight is floored once per node, an error below 10^-18 of
        // a stake of 1 MESH or more, so below 10^-17 of the emission in pay (and a base unit a node).
        expect(
          (after.payouts.get(operator) ?? 0n) + c.emission / 10n ** 17n + BigInt(c.nodes.length),
        ).toBeGreaterThanOrEqual(before.payouts.get(operator) ?? 0n)
        expect(after.total + after.dust).toBe(after.emission)
      }),
      { numRuns: 300 },
    )
  })

  it('is symmetric: two nodes alike in all but name, of operators alike, are paid alike', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        // Give node 0's twin (same stake, age and observations) to a fresh operator of its own, and
        // move node 0 to a fresh operator too.
        const first = c.nodes[0] as RewardNode
        const nodes = [
          { ...first, operator: op(1001) },
          ...c.nodes.slice(1),
          { ...first, peerId: 'twin', operator: op(1002) },
        ]
        const matrix = c.matrix.map((row) => [...row, row[0]])
        const r = computeEpochRewards(caseInput({ ...c, nodes, matrix }), params)
        expect(r.payouts.get(op(1001)) ?? 0n).toBe(r.payouts.get(op(1002)) ?? 0n)
      }),
      { numRuns: 200 },
    )
  })

  it('is deterministic: the order of nodes and observations does not matter', () => {
    fc.assert(
      fc.property(arbCase, fc.integer(), (c, seed) => {
        const a = caseInput(c)
        const shuffle = <T>(xs: readonly T[]) => {
          const out = [...xs]
          let s = seed >>> 0
          for (let i = out.length - 1; i > 0; i--) {
            s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0
            const j = s % (i + 1)
            ;[out[i], out[j]] = [out[j] as T, out[i] as T]
          }
          return out
        }
        const b = {
          ...a,
          nodes: shuffle(a.nodes),
          uptime: shuffle(a.uptime),
          verifiers: shuffle(a.verifiers),
        }
        const ra = computeEpochRewards(a, params)
        const rb = computeEpochRewards(b, params)
        const sorted = (m: Iterable<[string, bigint]>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1))
        expect(sorted(rb.payouts)).toEqual(sorted(ra.payouts))
        expect(rb.uptime.list()).toEqual(ra.uptime.list())
        expect(rb.dust).toBe(ra.dust)
      }),
      { numRuns: 200 },
    )
  })

  it('never pays a node whose score is below the threshold', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const r = computeEpochRewards(caseInput(c), params)
        for (const u of r.uptime.list()) {
          if (BigInt(u.scorePpm) < BigInt(params.uptime.thresholdPpm)) expect(u.reward).toBe(0n)
          expect(u.scorePpm).toBeLessThanOrEqual(Number(PPM))
        }
      }),
      { numRuns: 200 },
    )
  })
})

describe('computeEpochRewards (compute)', () => {
  const work = (
    verifier: string,
    n: string,
    jobs: number,
    value: bigint,
    fraud = false,
  ): ComputeObservation => ({
    verifier,
    node: n,
    jobs,
    value,
    fraud,
  })
  const nodes = [node(0), node(1), node(2)]
  const base = input(nodes, [10, 10, 10])

  it('opens a compute pool split by the median verified value, with uptime keeping its weight', () => {
    const compute = VERIFIERS.flatMap((v) => [
      work(v, 'node-000', 30, 3n * MESH),
      work(v, 'node-001', 10, 1n * MESH),
    ])
    const r = computeEpochRewards({ ...base, compute }, params)
    // Uptime 4,000 and compute 3,000 of the active 7,000 basis points.
    expect(r.pools.compute).toBe(34_000n * MESH - (34_000n * MESH * 4_000n) / 7_000n)
    const [a, b, c] = r.compute
    expect(a).toMatchObject({ peerId: 'node-000', value: 3n * MESH, fraud: false })
    expect(b?.reward).toBe(r.pools.compute / 4n)
    expect(c).toBeUndefined()
    // node-000 earns 3/4 of the compute pool on top of a third of uptime.
    expect(r.payouts.get(op(1))).toBe((r.pools.compute * 3n) / 4n + r.pools.uptime / 3n)
    expect(r.payouts.get(op(3))).toBe(r.pools.uptime / 3n)
  })

  it('zeroes the compute weight of a node that most observers caught, and one liar can neither invent nor hide work', () => {
    const compute = [
      ...VERIFIERS.map((v) => work(v, 'node-000', 30, 3n * MESH)),
      // Caught by two of three.
      work('v-a', 'node-001', 10, 1n * MESH, true),
      work('v-b', 'node-001', 10, 1n * MESH, true),
      work('v-c', 'node-001', 10, 1n * MESH),
      // One verifier invents work for node-002.
      work('v-c', 'node-002', 1_000, 1_000n * MESH),
      // And one falsely accuses node-000.
      work('v-b', 'node-000', 30, 3n * MESH, true),
    ]
    const r = computeEpochRewards({ ...base, compute }, params)
    const byNode = Object.fromEntries(r.compute.map((c) => [c.peerId, c]))
    expect(byNode['node-001']).toMatchObject({ fraud: true, weight: 0n, reward: 0n })
    expect(byNode['node-002']).toMatchObject({ value: 0n, weight: 0n })
    expect(byNode['node-000']).toMatchObject({ fraud: false, value: 3n * MESH })
    expect(byNode['node-000']?.reward).toBe(r.pools.compute)
  })

  it('conserves the emission, and more verified work never pays less (property)', () => {
    const entry = fc.tuple(
      fc.constantFrom(...VERIFIERS),
      fc.integer({ min: 0, max: 2 }),
      fc.bigInt({ min: 0n, max: 10n ** 21n }),
      fc.boolean(),
    )
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 12 }),
        fc.integer({ min: 0, max: 2 }),
        fc.constantFrom(...VERIFIERS),
        (entries, lifted, by) => {
          const compute = entries.map(([v, n, value, fraud]) => work(v, `node-00${n}`, 1, value, fraud))
          const r = computeEpochRewards({ ...base, compute }, params)
          expect(r.total + r.dust).toBe(r.emission)
          expect(r.dust).toBeLessThan(2n * BigInt(nodes.length))
          for (const c of r.compute) if (c.fraud) expect(c.reward).toBe(0n)
          // One observer reports one more MESH of honest work for a node (while the pool is open).
          const target = `node-00${lifted}`
          const mine = compute.filter((o) => o.verifier === by && o.node === target)
          if (r.pools.compute === 0n || mine.some((o) => o.fraud)) return
          const held = mine.map((o) => o.value).sort((a, b) => (a < b ? 1 : a > b ? -1 : 0))[0] ?? 0n
          const after = computeEpochRewards(
            { ...base, compute: [...compute, work(by, target, 1, held + MESH)] },
            params,
          )
          expect(after.payouts.get(op(lifted + 1)) ?? 0n).toBeGreaterThanOrEqual(
            r.payouts.get(op(lifted + 1)) ?? 0n,
          )
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('computeEpochRewards (storage)', () => {
  const proof = (
    verifier: string,
    n: string,
    challenges: number,
    passed: number,
    bytes: number,
  ): StorageObservation => ({
    verifier,
    node: n,
    challenges,
    passed,
    bytes,
  })
  const nodes = [node(0), node(1), node(2)]
  const base = input(nodes, [10, 10, 10])
  const GIB = 2 ** 30

  it('opens a storage pool split by the median proven bytes; a holder that fails a challenge is not paid by that verifier', () => {
    const storage = VERIFIERS.flatMap((v) => [
      proof(v, 'node-000', 4, 4, 3 * GIB),
      proof(v, 'node-001', 4, 4, GIB),
      // node-002 lost a chunk: every verifier caught one failed challenge.
      proof(v, 'node-002', 4, 3, 5 * GIB),
    ])
    const r = computeEpochRewards({ ...base, storage }, params)
    // Uptime 4,000 and storage 2,000 of the active 6,000 basis points.
    expect(r.pools.storage).toBe(34_000n * MESH - (34_000n * MESH * 4_000n) / 6_000n)
    const byNode = Object.fromEntries(r.storage.map((x) => [x.peerId, x]))
    expect(byNode['node-000']).toMatchObject({ bytes: 3 * GIB })
    expect(byNode['node-002']).toMatchObject({ bytes: 0, weight: 0n, reward: 0n })
    expect(byNode['node-001']?.reward).toBe(r.pools.storage / 4n)
    expect(r.payouts.get(op(1))).toBe((r.pools.storage * 3n) / 4n + r.pools.uptime / 3n)
    expect(r.payouts.get(op(3))).toBe(r.pools.uptime / 3n)
  })

  it('one verifier can neither invent storage nor hide it (median of three)', () => {
    const storage = [
      ...VERIFIERS.map((v) => proof(v, 'node-000', 2, 2, GIB)),
      // v-c invents 100 GiB for node-001; v-b says node-000 failed.
      proof('v-c', 'node-001', 2, 2, 100 * GIB),
      proof('v-b', 'node-000', 2, 0, GIB),
    ]
    const r = computeEpochRewards({ ...base, storage }, params)
    const byNode = Object.fromEntries(r.storage.map((x) => [x.peerId, x]))
    expect(byNode['node-001']?.weight).toBe(0n)
    expect(byNode['node-000']?.bytes).toBe(GIB)
    expect(byNode['node-000']?.reward).toBe(r.pools.storage)
  })

  it('conserves the emission, and more proven bytes never pay less (property)', () => {
    const entry = fc.tuple(
      fc.constantFrom(...VERIFIERS),
      fc.integer({ min: 0, max: 2 }),
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 0, max: 6 }),
      fc.integer({ min: 0, max: 2 ** 40 }),
    )
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 12 }),
        fc.integer({ min: 0, max: 2 }),
        fc.constantFrom(...VERIFIERS),
        (entries, lifted, by) => {
          const storage = entries.map(([v, n, c, p, b]) => proof(v, `node-00${n}`, c, Math.min(p, c), b))
          const r = computeEpochRewards({ ...base, storage }, params)
          expect(r.total + r.dust).toBe(r.emission)
          expect(r.dust).toBeLessThan(2n * BigInt(nodes.length))
          if (r.pools.storage === 0n) return
          // One observer proves one more GiB for a node, all its challenges passed.
          const target = `node-00${lifted}`
          const held = Math.max(
            0,
            ...storage
              .filter((o) => o.verifier === by && o.node === target && o.passed === o.challenges)
              .map((o) => o.bytes),
          )
          const after = computeEpochRewards(
            { ...base, storage: [...storage, proof(by, target, 1, 1, held + GIB)] },
            params,
          )
          expect(after.payouts.get(op(lifted + 1)) ?? 0n).toBeGreaterThanOrEqual(
            r.payouts.get(op(lifted + 1)) ?? 0n,
          )
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('computeEpochRewards (delivery bandwidth)', () => {
  const nodes = [node(0), node(1), node(2)]
  const base = input(nodes, [10, 10, 10])
  const served = (verifier: string, n: string, bytes: number, downloaders = 1): BandwidthObservation => ({
    verifier,
    node: n,
    bytes,
    downloaders,
  })

  it('opens a relay pool split by the median receipted bytes; one verifier cannot invent bandwidth', () => {
    const bandwidth = [
      ...VERIFIERS.map((v) => served(v, 'node-000', 3_000_000, 2)),
      ...VERIFIERS.map((v) => served(v, 'node-001', 1_000_000)),
      served('v-c', 'node-002', 9_000_000_000),
    ]
    const r = computeEpochRewards({ ...base, bandwidth }, params)
    // Uptime 4,000 and relay 500 of the active 4,500 basis points.
    expect(r.pools.relay).toBe(34_000n * MESH - (34_000n * MESH * 4_000n) / 4_500n)
    const byNode = Object.fromEntries(r.bandwidth.map((x) => [x.peerId, x]))
    expect(byNode['node-002']?.weight).toBe(0n)
    expect(byNode['node-000']?.reward).toBe((r.pools.relay * 3n) / 4n)
    expect(r.total + r.dust).toBe(r.emission)
  })
})

describe('computeEpochRewards (sensors)', () => {
  const CELLS = ['851f1d4bfffffff', '851f1d4ffffffff']
  const station = (
    verifier: string,
    n: number,
    qualityPpm: number,
    options: {
      cell?: string
      probe?: SensorObservation['probe']
      since?: number
      agreementPpm?: number
    } = {},
  ): SensorObservation => ({
    verifier,
    node: `node-${String(n).padStart(3, '0')}`,
    cell: options.cell ?? (CELLS[0] as string),
    probe: options.probe === undefined ? { rttMs: 5, distanceKm: 10 } : options.probe,
    sensors: [
      {
        device: `device-${n}`,
        since: options.since ?? 0,
        readings: 60,
        qualityPpm,
        agreementPpm: options.agreementPpm ?? 1_000_000,
      },
    ],
  })

  it('pays quality × location within the cell capacity, ranking by score then seniority', () => {
    const nodes = [0, 1, 2, 3, 4].map((i) => node(i))
    const sensor = VERIFIERS.flatMap((v) => [
      station(v, 0, 980_000),
      station(v, 1, 950_000, { since: 3 }),
      station(v, 2, 950_000, { since: 5 }),
      // Stuck: no usable data.
      station(v, 3, 0),
      // Claims a cell 2,300 km from the verifier that reached it in 2 ms (v-a only: enough).
      station(v, 4, 990_000, v === 'v-a' ? { probe: { rttMs: 2, distanceKm: 2_300 } } : {}),
    ])
    const r = computeEpochRewards(
      { ...input(nodes, [10, 10, 10, 10, 10]), sensor },
      { ...params, sensor: { cellCapacity: 2 } },
    )
    const byNode = Object.fromEntries(r.sensor.map((x) => [x.peerId, x]))
    expect(byNode['node-000']?.sensors[0]).toMatchObject({ scorePpm: 980_000, rank: 1, paid: true })
    expect(byNode['node-001']?.sensors[0]).toMatchObject({ rank: 2, paid: true })
    expect(byNode['node-002']?.sensors[0]).toMatchObject({ rank: 3, paid: false, weight: 0n })
    expect(byNode['node-002']?.sensors[0]?.reason).toMatch(/over the cell's capacity: rank 3 of 3/)
    expect(byNode['node-003']?.sensors[0]).toMatchObject({ paid: false, reason: 'no usable data' })
    expect(byNode['node-004']?.impossible).toEqual([
      { verifier: 'v-a', rttMs: 2, distanceKm: 2_300, maxKm: 200 },
    ])
    expect(byNode['node-004']?.sensors[0]).toMatchObject({ locationPpm: 0, paid: false })
    // Uptime 4,000 and sensor 500 of 4,500 basis points; A and B share the sensor pool 980 : 950.
    const pool = 34_000n * MESH - (34_000n * MESH * 4_000n) / 4_500n
    expect(r.pools.sensor).toBe(pool)
    expect(byNode['node-000']?.reward).toBe((pool * 980_000n * 10_000n) / (1_930_000n * 10_000n))
    // Without a probe the place is unproven: half the agreement.
    const unprobed = computeEpochRewards(
      {
        ...input(nodes, [10, 10, 10, 10, 10]),
        sensor: VERIFIERS.map((v) => station(v, 0, 1_000_000, { probe: null })),
      },
      params,
    )
    expect(unprobed.sensor[0]?.sensors[0]).toMatchObject({ locationPpm: 500_000, scorePpm: 500_000 })
  })

  it('conserves the emission, pays at most cellCapacity sensors per cell, and a higher quality never pays less (property)', () => {
    const nodes = Array.from({ length: 8 }, (_, i) => node(i))
    const base = input(nodes, [10, 10, 10, 10, 10, 10, 10, 10])
    const entry = fc.tuple(
      fc.constantFrom(...VERIFIERS),
      fc.integer({ min: 0, max: 7 }),
      fc.integer({ min: 0, max: 1_000_000 }),
      fc.integer({ min: 0, max: 1 }),
      fc.integer({ min: 0, max: 5 }),
    )
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 24 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 7 }),
        fc.constantFrom(...VERIFIERS),
        (entries, cellCapacity, lifted, by) => {
          const p = { ...params, sensor: { cellCapacity } }
          // A node's cell is fixed (nodes 0-3 in one, 4-7 in the other).
          const sensor = entries.map(([v, n, q, _c, since]) =>
            station(v, n, q, { cell: CELLS[n < 4 ? 0 : 1] as string, since }),
          )
          const r = computeEpochRewards({ ...base, sensor }, p)
          expect(r.total + r.dust).toBe(r.emission)
          expect(r.dust).toBeLessThan(2n * BigInt(nodes.length))
          for (const cell of CELLS)
            expect(
              r.sensor.filter((e) => e.cell === cell).flatMap((e) => e.sensors.filter((s) => s.paid)).length,
            ).toBeLessThanOrEqual(cellCapacity)
          if (r.pools.sensor === 0n) return
          // One observer reports a better quality for one sensor.
          const held = sensor.filter((o) => o.verifier === by && o.node === `node-00${lifted}`)
          const better = Math.min(
            1_000_000,
            Math.max(0, ...held.map((o) => o.sensors[0]?.qualityPpm ?? 0)) + 100_000,
          )
          const after = computeEpochRewards(
            {
              ...base,
              sensor: [
                ...sensor.filter((o) => !(o.verifier === by && o.node === `node-00${lifted}`)),
                station(by, lifted, better, {
                  cell: CELLS[lifted < 4 ? 0 : 1] as string,
                  since: held[0]?.sensors[0]?.since ?? 0,
                }),
              ],
            },
            p,
          )
          expect(after.payouts.get(op(lifted + 1)) ?? 0n).toBeGreaterThanOrEqual(
            r.payouts.get(op(lifted + 1)) ?? 0n,
          )
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('computeEpochRewards (places: the cell cap and the location rule)', () => {
  const BERLIN = '871f1d489ffffff' // resolution 7
  const BERLIN_9 = '891f1d48903ffff' // resolution 9, inside BERLIN
  const PARIS = '871fb4662ffffff'
  const capped: RewardParams = { ...params, uptime: { ...params.uptime, cellStakeCap: 10_000n * MESH } }
  const full = (n: RewardNode[]) =>
    input(
      n,
      n.map(() => 10),
    )

  it('makes the eligible nodes of one cell share cellStakeCap: a Sybil farm earns what one capped node there earns', () => {
    // Four identities of one operator in Berlin, 5,000 MESH each, and one honest node of 10,000 in Paris.
    const farm = [0, 1, 2, 3].map((i) => node(i, { operator: op(99), stake: 5_000n * MESH, cell: BERLIN }))
    const paris = node(4, { stake: 10_000n * MESH, cell: PARIS })
    const r = computeEpochRewards(full([...farm, paris]), capped)
    // The farm's 20,000 MESH count as 10,000 in its cell: it earns what the Paris node earns.
    expect(r.payouts.get(op(99))).toBe(r.payouts.get(op(5)))
    const why = r.uptime.explain('node-000')
    expect(why).toMatchObject({ cell: BERLIN, cellStake: 20_000n * MESH, stakeWeight: 2_500n * MESH })
    // One identity holding the farm's whole stake earns the same (the per-node cap binds instead).
    const twin = computeEpochRewards(
      full([node(0, { operator: op(99), stake: 20_000n * MESH, cell: BERLIN }), paris]),
      capped,
    )
    expect(twin.payouts.get(op(99))).toBe(r.payouts.get(op(99)))
  })

  it('groups a finer cell with its resolution-7 parent, and leaves a cell under the cap alone', () => {
    const r = computeEpochRewards(
      full([
        node(0, { stake: 8_000n * MESH, cell: BERLIN }),
        node(1, { stake: 8_000n * MESH, cell: BERLIN_9 }),
        node(2, { stake: 8_000n * MESH, cell: PARIS }),
      ]),
      capped,
    )
    expect(r.uptime.explain('node-001')).toMatchObject({ cell: BERLIN, cellStake: 16_000n * MESH })
    expect(r.uptime.explain('node-001')?.stakeWeight).toBe(5_000n * MESH)
    expect(r.uptime.explain('node-002')).toMatchObject({ cell: PARIS, stakeWeight: 8_000n * MESH })
    // 5,000 : 5,000 : 8,000.
    expect(r.payouts.get(op(3))).toBe((34_000n * MESH * 8n) / 18n)
  })

  it('pays no uptime to a node whose registered cell is not an H3 cell', () => {
    const r = computeEpochRewards(full([node(0, { cell: '1' }), node(1, { cell: BERLIN })]), capped)
    expect(r.uptime.explain('node-000')).toMatchObject({ invalidCell: true, eligible: false, weight: 0n })
    expect(r.payouts.get(op(1))).toBeUndefined()
    expect(r.payouts.get(op(2))).toBe(34_000n * MESH)
  })

  it('pays no uptime to a claim more than a third of the observers rule out by the speed of light in fibre', () => {
    const probed = (verifiers: string[], ruledOutBy: number) => {
      const nodes = [node(0, { cell: PARIS }), node(1, { cell: BERLIN })]
      const uptime: UptimeObservation[] = verifiers.flatMap((verifier, v) =>
        nodes.map((n, i) => ({
          verifier,
          node: n.peerId,
          challenges: 10,
          answered: 10,
          // node-000 claims Paris, 880 km from these verifiers, but answers in 3 ms (at most 300 km).
          probe: i === 0 && v < ruledOutBy ? { rttMs: 3, distanceKm: 880 } : { rttMs: 20, distanceKm: 880 },
        })),
      )
      return computeEpochRewards({ epoch: 10, emission: 34_000n * MESH, nodes, verifiers, uptime }, capped)
    }
    // Three observers tolerate no faulty one: one probe is enough.
    const three = probed(['v-a', 'v-b', 'v-c'], 1)
    expect(three.uptime.explain('node-000')).toMatchObject({ ruledOut: true, eligible: false, weight: 0n })
    expect(three.uptime.explain('node-000')?.impossible).toEqual([
      { verifier: 'v-a', rttMs: 3, distanceKm: 880, maxKm: 300 },
    ])
    expect(three.payouts.get(op(1))).toBeUndefined()
    // Four observers tolerate one: a lone verifier cannot void a claim, two can.
    const four = ['v-a', 'v-b', 'v-c', 'v-d']
    expect(probed(four, 1).uptime.explain('node-000')).toMatchObject({ ruledOut: false, eligible: true })
    expect(probed(four, 2).uptime.explain('node-000')).toMatchObject({ ruledOut: true, eligible: false })
    // A round trip long enough for the distance rules nothing out.
    expect(probed(['v-a', 'v-b', 'v-c'], 0).payouts.get(op(1))).toBe(17_000n * MESH)
  })

  it('never pays identities split from one stake in one cell more than the stake in one identity (property)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 50_000n }),
        fc.integer({ min: 2, max: 8 }),
        fc.array(fc.bigInt({ min: 1n, max: 30_000n }), { minLength: 1, maxLength: 5 }),
        (stake, k, others) => {
          const honest = others.map((s, i) => node(10 + i, { stake: s * MESH, cell: PARIS }))
          const farm = Array.from({ length: k }, (_, i) =>
            node(i, { operator: op(99), stake: (stake * MESH) / BigInt(k), cell: BERLIN }),
          )
          const split = computeEpochRewards(full([...farm, ...honest]), capped)
          const one = computeEpochRewards(
            full([node(0, { operator: op(99), stake: stake * MESH, cell: BERLIN }), ...honest]),
            capped,
          )
          expect(split.payouts.get(op(99)) ?? 0n).toBeLessThanOrEqual(
            (one.payouts.get(op(99)) ?? 0n) + BigInt(k),
          )
          expect(split.total + split.dust).toBe(split.emission)
        },
      ),
      { numRuns: 200 },
    )
  })
})

describe('computeEpochRewards (the compute rebate cap: wash trading does not pay)', () => {
  const rebated: RewardParams = { ...params, compute: { rebateBps: 9_000 } }
  const nodes = [node(0), node(1), node(2)]
  const withWork = (values: bigint[], burned: [string, bigint][]): RewardInput => ({
    ...input(nodes, [10, 10, 10]),
    compute: VERIFIERS.flatMap((verifier) =>
      values.map((value, i) => ({ verifier, node: `node-00${i}`, jobs: 1, value, fraud: false })),
    ),
    burned,
  })

  it('pays an operator at most 90% of the fees its payments burned, and gives what it holds back to uptime', () => {
    // node-000 claims 1,000,000 MESH of work its operator paid no fee for; node-001 burned 50 MESH.
    const r = computeEpochRewards(
      withWork([1_000_000n * MESH, 10n * MESH, 0n], [[op(2), 50n * MESH]]),
      rebated,
    )
    expect(r.compute.find((c) => c.peerId === 'node-000')).toMatchObject({ operatorCap: 0n, reward: 0n })
    expect(r.compute.find((c) => c.peerId === 'node-001')).toMatchObject({ operatorCap: 45n * MESH })
    expect(r.pools.compute).toBeLessThanOrEqual(45n * MESH)
    // The rest of the compute pool went to uptime: three equal nodes share it.
    expect(r.pools.uptime + r.pools.compute).toBe(r.emission)
    expect(r.total + r.dust).toBe(r.emission)
    expect(r.payouts.get(op(1))).toBe(r.pools.uptime / 3n)
  })

  it('leaves the compute pool uncapped in parameter sets made before the cap', () => {
    const r = computeEpochRewards(withWork([10n * MESH, 10n * MESH, 0n], []), params)
    expect(r.pools.compute).toBeGreaterThan(0n)
    expect(r.compute[0]?.operatorCap).toBeNull()
  })

  it('never pays an operator more compute reward than rebateBps of what it burned, and conserves (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: 0n, max: 10n ** 24n }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.bigInt({ min: 0n, max: 10n ** 22n }), { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 0, max: 9_999 }),
        (values, burns, rebateBps) => {
          const p = { ...params, compute: { rebateBps } }
          const r = computeEpochRewards(
            withWork(
              values,
              burns.map((b, i) => [op(i + 1), b]),
            ),
            p,
          )
          expect(r.total + r.dust).toBe(r.emission)
          for (const c of r.compute) {
            const burned = burns[Number(c.peerId.slice(-1))] as bigint
            expect(c.reward).toBeLessThanOrEqual((burned * BigInt(rebateBps)) / 10_000n)
            if (burned > 0n) expect(c.reward).toBeLessThan(burned)
          }
        },
      ),
      { numRuns: 200 },
    )
  })
})

describe('cellKey (the uptime cell cap groups cells by their resolution-7 parent)', () => {
  it('agrees with h3-js cellToParent for cells of every resolution, and refuses what is not a cell', () => {
    for (let i = 0; i < 2_000; i++) {
      const res = i % 16
      const cell = latLngToCell(-80 + ((i * 7.3) % 160), -179 + ((i * 13.7) % 358), res)
      expect(cellOfKey(cellKey(cell)), cell).toBe(cellToParent(cell, Math.min(res, UPTIME_CELL_RESOLUTION)))
    }
    for (const bad of [
      '1',
      '',
      '871f1d489fffff',
      '871f1d489ffffffa',
      '871F1D489FFFFFF',
      '071f1d489ffffff',
      '871f1d4897fffff',
    ])
      expect(cellKey(bad), bad).toBe(-1)
  })
})

describe('computeEpochRewards (certified hardware: only devices make identities and places distinct)', () => {
  const BERLIN = '871f1d489ffffff' // resolution 7
  const BERLIN_5 = cellToParent(BERLIN, 5)
  const PARIS = '871fb4662ffffff'
  const PARIS_5 = cellToParent(PARIS, 5)
  const MAKER = 'maker-approved'
  const certifiedParams: RewardParams = {
    ...params,
    uptime: { ...params.uptime, cellStakeCap: 10_000n * MESH },
    hardware: { makers: [MAKER], linearBps: 5_000 },
  }
  /** Every verifier reports node `n`'s one station in `cell`, certified by `maker` (none: undefined). */
  const stations = (n: number, cell: string, maker: string | undefined, verifiers = VERIFIERS) =>
    verifiers.map(
      (verifier): SensorObservation => ({
        verifier,
        node: `node-${String(n).padStart(3, '0')}`,
        cell,
        probe: { rttMs: 5, distanceKm: 10 },
        sensors: [
          {
            device: `device-${n}`,
            ...(maker === undefined ? {} : { maker }),
            since: 0,
            readings: 60,
            qualityPpm: 1_000_000,
            agreementPpm: 1_000_000,
          },
        ],
      }),
    )
  const full = (n: RewardNode[], sensor: SensorObservation[] = []) => ({
    ...input(
      n,
      n.map(() => 10),
    ),
    sensor,
  })

  it('counts half of any stake, and the capped, cell-shared other half only for a node with a certified device in its place', () => {
    const nodes = [
      node(0, { stake: 10_000n * MESH, cell: BERLIN }),
      node(1, { stake: 10_000n * MESH, cell: PARIS }),
      node(2, { stake: 40_000n * MESH, cell: PARIS }),
    ]
    // Node 0 has a certified station in Berlin; node 1's station has no maker; node 2 has none.
    const r = computeEpochRewards(
      full(nodes, [...stations(0, BERLIN_5, MAKER), ...stations(1, PARIS_5, undefined)]),
      {
        ...certifiedParams,
        serviceWeightsBps: { uptime: 10_000, compute: 0, storage: 0, relay: 0, sensor: 0 },
      },
    )
    expect(r.uptime.explain('node-000')).toMatchObject({
      hardware: { device: 'device-0', maker: MAKER },
      certifiedStake: 10_000n * MESH,
      stakeWeight: 10_000n * MESH,
    })
    expect(r.uptime.explain('node-001')).toMatchObject({
      hardware: null,
      certifiedStake: 0n,
      stakeWeight: 5_000n * MESH,
    })
    // Uncapped: a large stake without hardware counts half of all of it.
    expect(r.uptime.explain('node-002')).toMatchObject({ hardware: null, stakeWeight: 20_000n * MESH })
    // 10,000 : 5,000 : 20,000.
    expect(r.payouts.get(op(1))).toBe((34_000n * MESH * 10n) / 35n)
    expect(r.payouts.get(op(2))).toBe((34_000n * MESH * 5n) / 35n)
  })

  it('pays sensors of approved makers only, names why, and places no node with a device certified elsewhere', () => {
    const nodes = [
      node(0, { cell: BERLIN }),
      node(1, { cell: BERLIN }),
      node(2, { cell: BERLIN }),
      node(3, { cell: PARIS }),
      node(4, { cell: BERLIN }),
    ]
    const sensor = [
      ...stations(0, BERLIN_5, MAKER),
      ...stations(1, BERLIN_5, 'maker-unknown'),
      ...stations(2, BERLIN_5, undefined),
      // Certified, but in Berlin while the node registered Paris: paid as a sensor, does not place it.
      ...stations(3, BERLIN_5, MAKER),
      // Only one of three observers saw the maker's certificate: no majority, not certified.
      ...stations(4, BERLIN_5, MAKER, ['v-a']),
      ...stations(4, BERLIN_5, undefined, ['v-b', 'v-c']),
    ]
    const r = computeEpochRewards(full(nodes, sensor), certifiedParams)
    const s = (n: number) => r.sensor.find((e) => e.peerId === `node-00${n}`)
    expect(s(0)?.sensors[0]).toMatchObject({ maker: MAKER, certified: true, paid: true })
    expect(s(0)?.hardware).toEqual({ device: 'device-0', maker: MAKER })
    expect(s(1)?.sensors[0]).toMatchObject({ certified: false, paid: false, weight: 0n })
    expect(s(1)?.sensors[0]?.reason).toBe('its maker maker-unknown is not approved in this epoch')
    expect(s(2)?.sensors[0]?.reason).toMatch(/^no maker certifies the device/)
    expect(s(3)?.sensors[0]).toMatchObject({ paid: true })
    expect(s(3)?.hardware).toBeNull()
    expect(s(4)?.sensors[0]).toMatchObject({ maker: null, certified: false, paid: false })
    expect(r.uptime.explain('node-003')?.hardware).toBeNull()
    // Parameter sets made before certified hardware pay every sensor, as before.
    const { hardware: _, ...before } = certifiedParams
    const old = computeEpochRewards(full(nodes, sensor), before)
    expect(old.sensor.flatMap((e) => e.sensors).every((x) => x.paid)).toBe(true)
  })

  it('never pays stake split across identities claiming different places more than one identity (property)', () => {
    // The careful location spoofer: one stake, k identities, each claiming a cell of its own that no
    // probe rules out. Without certified hardware it gains whatever the caps withhold from one identity.
    const CELLS = [BERLIN, PARIS, '871f1d4a8ffffff', '871fb4670ffffff', '87196b842ffffff', '871e14b44ffffff']
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 60_000n }),
        fc.integer({ min: 2, max: CELLS.length }),
        fc.array(fc.tuple(fc.bigInt({ min: 1n, max: 30_000n }), fc.boolean()), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.integer({ min: 0, max: 10_000 }),
        (stake, k, others, linearBps) => {
          const p = { ...certifiedParams, hardware: { makers: [MAKER], linearBps } }
          // Honest nodes in Berlin, some with certified stations there.
          const honest = others.map(([s], i) => node(10 + i, { stake: s * MESH, cell: BERLIN }))
          const sensor = others.flatMap(([, certified], i) =>
            certified ? stations(10 + i, BERLIN_5, MAKER) : [],
          )
          const split = computeEpochRewards(
            full(
              [
                ...Array.from({ length: k }, (_, i) =>
                  node(i, { operator: op(99), stake: (stake * MESH) / BigInt(k), cell: CELLS[i] as string }),
                ),
                ...honest,
              ],
              sensor,
            ),
            p,
          )
          const one = computeEpochRewards(
            full([node(0, { operator: op(99), stake: stake * MESH, cell: BERLIN }), ...honest], sensor),
            p,
          )
          expect(split.payouts.get(op(99)) ?? 0n).toBeLessThanOrEqual(
            (one.payouts.get(op(99)) ?? 0n) + BigInt(k),
          )
          expect(split.total + split.dust).toBe(split.emission)
        },
      ),
      { numRuns: 200 },
    )
  })

  it('pays a split across places without certified hardware (the finding the rule closes)', () => {
    const { hardware: _, ...before } = certifiedParams
    const twin = [
      node(0, { operator: op(99), stake: 20_000n * MESH, cell: BERLIN }),
      node(5, { stake: 10_000n * MESH, cell: BERLIN }),
    ]
    const split = [
      node(0, { operator: op(99), stake: 10_000n * MESH, cell: BERLIN }),
      node(1, { operator: op(99), stake: 10_000n * MESH, cell: PARIS }),
      node(5, { stake: 10_000n * MESH, cell: BERLIN }),
    ]
    const gain = (p: RewardParams) =>
      (computeEpochRewards(full(split), p).payouts.get(op(99)) ?? 0n) -
      (computeEpochRewards(full(twin), p).payouts.get(op(99)) ?? 0n)
    expect(gain(before)).toBeGreaterThan(1_000n * MESH)
    expect(gain(certifiedParams)).toBeLessThanOrEqual(0n)
  })

  it('refuses a linear share outside [0, 10000] and a maker listed twice', () => {
    expect(() =>
      validateRewardParams({ ...certifiedParams, hardware: { makers: [], linearBps: 10_001 } }),
    ).toThrow(/hardware.linearBps/)
    expect(() =>
      validateRewardParams({ ...certifiedParams, hardware: { makers: [MAKER, MAKER], linearBps: 0 } }),
    ).toThrow(/twice/)
  })
})

describe('computeEpochRewards (the work rebate cap: storage and relay are paid only for what someone paid for)', () => {
  const workParams: RewardParams = { ...params, work: { rebateBps: 9_000 } }
  const nodes = [node(0), node(1), node(2)]
  const GIB = 2 ** 30
  /** Each node's compute value, proven storage bytes and receipted bytes, as every verifier reports them. */
  const withWork = (
    work: { value?: bigint | undefined; stored?: number | undefined; served?: number | undefined }[],
    burned: [string, bigint][],
  ): RewardInput => ({
    ...input(nodes, [10, 10, 10]),
    compute: VERIFIERS.flatMap((verifier) =>
      work.flatMap((w, i) =>
        w.value === undefined
          ? []
          : [{ verifier, node: `node-00${i}`, jobs: 1, value: w.value, fraud: false }],
      ),
    ),
    storage: VERIFIERS.flatMap((verifier) =>
      work.flatMap((w, i) =>
        w.stored === undefined
          ? []
          : [{ verifier, node: `node-00${i}`, challenges: 2, passed: 2, bytes: w.stored }],
      ),
    ),
    bandwidth: VERIFIERS.flatMap((verifier) =>
      work.flatMap((w, i) =>
        w.served === undefined ? [] : [{ verifier, node: `node-00${i}`, bytes: w.served, downloaders: 1 }],
      ),
    ),
    burned,
  })

  it('gives a self-storer with no payments nothing from the storage pool, and scales paid work alike under the cap', () => {
    // node-000 proves 100 GiB of its own junk and burned nothing; node-001 holds 1 GiB a builder
    // paid rent for (10 MESH of fees burned) and did 1 MESH of compute work; node-002 does nothing.
    const r = computeEpochRewards(
      withWork([{ stored: 100 * GIB }, { stored: GIB, value: 1n * MESH }, {}], [[op(2), 10n * MESH]]),
      workParams,
    )
    const stored = (n: number) => r.storage.find((c) => c.peerId === `node-00${n}`)
    expect(stored(0)).toMatchObject({ operatorCap: 0n, reward: 0n })
    expect(stored(1)?.operatorCap).toBe(9n * MESH)
    // node-001's compute and storage shares together exceed 9 MESH: both are scaled to fit it.
    const computed = r.compute.find((c) => c.peerId === 'node-001')
    expect((stored(1)?.reward ?? 0n) + (computed?.reward ?? 0n)).toBeLessThanOrEqual(9n * MESH)
    expect((stored(1)?.reward ?? 0n) + (computed?.reward ?? 0n)).toBeGreaterThan(9n * MESH - 2n)
    expect(computed?.reward).toBeGreaterThan(0n)
    // Everything held back went to uptime.
    expect(r.pools.uptime + r.pools.compute + r.pools.storage).toBe(r.emission)
    expect(r.total + r.dust).toBe(r.emission)
    // Under `compute.rebateBps` alone (sets made before), the junk was paid most of the storage pool.
    const before = computeEpochRewards(
      withWork([{ stored: 100 * GIB }, { stored: GIB, value: 1n * MESH }, {}], [[op(2), 10n * MESH]]),
      { ...params, compute: { rebateBps: 9_000 } },
    )
    expect(before.storage.find((c) => c.peerId === 'node-000')?.reward).toBeGreaterThan(
      before.pools.storage / 2n,
    )
  })

  it('never pays an operator more from compute, storage and relay together than rebateBps of what it burned, and conserves (property)', () => {
    const amount = fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: undefined })
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            value: fc.option(fc.bigInt({ min: 0n, max: 10n ** 24n }), { nil: undefined }),
            stored: amount,
            served: amount,
          }),
          { minLength: 3, maxLength: 3 },
        ),
        fc.array(fc.bigInt({ min: 0n, max: 10n ** 22n }), { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 0, max: 9_999 }),
        (work, burns, rebateBps) => {
          const r = computeEpochRewards(
            withWork(
              work,
              burns.map((b, i) => [op(i + 1), b]),
            ),
            { ...params, work: { rebateBps } },
          )
          expect(r.total + r.dust).toBe(r.emission)
          for (let i = 0; i < 3; i++) {
            const peerId = `node-00${i}`
            const got = [...r.compute, ...r.storage, ...r.bandwidth]
              .filter((c) => c.peerId === peerId)
              .reduce((sum, c) => sum + c.reward, 0n)
            const burned = burns[i] as bigint
            expect(got).toBeLessThanOrEqual((burned * BigInt(rebateBps)) / 10_000n)
            if (burned > 0n) expect(got).toBeLessThan(burned)
          }
        },
      ),
      { numRuns: 200 },
    )
  })

  it('refuses a set with both the compute and the work rebate', () => {
    expect(() => validateRewardParams({ ...workParams, compute: { rebateBps: 9_000 } })).toThrow(/replaces/)
  })
})
