import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createPeerSigner } from '../mesh/peer-key.js'
import { drawJobs } from './compute-jobs.js'
import { runFast } from './fast-engine.js'
import { drawSessions, honestFleet } from './fleet.js'
import { drawPlace, greatCircleKm, linkBetween } from './geography.js'
import { seedBytes, stream } from './random.js'
import { scenarioByName } from './scenarios.js'
import { simulate } from './simulate.js'
import { runStack } from './stack-engine.js'
import { buildWorld, ed25519PeerId } from './world.js'

describe('network model', () => {
  it('places nodes by population on H3 cells, the same for the same seed', () => {
    const a = honestFleet({ seed: 5, nodes: 200, epochs: 4, churn: { leave: 0.1, rejoin: 0.5, join: 0.1 } })
    const b = honestFleet({ seed: 5, nodes: 200, epochs: 4, churn: { leave: 0.1, rejoin: 0.5, join: 0.1 } })
    expect(JSON.stringify(a)).toBe(JSON.stringify(b))
    const centres = new Set(a.machines.map((m) => m.place.centre))
    expect(centres.size).toBeGreaterThan(20)
    // Tokyo (37 M) draws more nodes than Auckland (2 M) in a large fleet.
    const big = honestFleet({ seed: 5, nodes: 3_000, epochs: 1, churn: { leave: 0, rejoin: 0, join: 0 } })
    const count = (name: string) => big.machines.filter((m) => m.place.centre === name).length
    expect(count('Tokyo')).toBeGreaterThan(3 * count('Auckland'))
    for (const m of a.machines) expect(m.place.cell).toMatch(/^87[0-9a-f]{13}$/)
  })

  it('gives links a latency that grows with distance (light in fibre) and never below the access delays', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), (seed) => {
        const r = stream(seed, 'test')
        const [p, q, s] = [drawPlace(r), drawPlace(r), drawPlace(r)]
        expect(greatCircleKm(p, q)).toBeCloseTo(greatCircleKm(q, p), 6)
        expect(greatCircleKm(p, s)).toBeLessThanOrEqual(greatCircleKm(p, q) + greatCircleKm(q, s) + 1e-6)
        const access = { accessMs: 5, jitterMs: 2, lossRate: 0.001 }
        const link = linkBetween({ place: p, access }, { place: q, access })
        expect(link.latencyMs).toBeGreaterThanOrEqual(10)
        expect(link.latencyMs).toBeLessThan(10 + 200) // half the Earth's circumference, through fibre, is ~150 ms
      }),
    )
  })

  it('draws online sessions that are sorted, disjoint and inside the run', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.double({ min: 0.1, max: 50, noNaN: true }),
        fc.double({ min: 0.1, max: 50, noNaN: true }),
        (seed, on, off) => {
          const sessions = drawSessions(seed, ['t'], on, off, { from: 0, to: 24 })
          let last = 0
          for (const s of sessions) {
            expect(s.from).toBeGreaterThanOrEqual(last)
            expect(s.to).toBeGreaterThan(s.from)
            expect(s.to).toBeLessThanOrEqual(24)
            last = s.to
          }
        },
      ),
      { numRuns: 50 },
    )
  })
})

describe('identities', () => {
  it('derives the same peer id as the libp2p key from the same seed', async () => {
    for (let i = 0; i < 5; i++) {
      const seed = seedBytes(1, 'node', i)
      const libp2p = createPeerSigner(await generateKeyPairFromSeed('Ed25519', seed))
      expect(ed25519PeerId(seed)).toBe(libp2p.peerId)
    }
  })
})

describe('engines', () => {
  it('the fast path posts the same roots as the production stack when no message is lost', async () => {
    const epochs = 3
    const fleet = honestFleet({ seed: 7, nodes: 16, epochs, churn: { leave: 0.3, rejoin: 0.5, join: 0.3 } })
    const world = buildWorld({ seed: 7, epochs, fleet, verifiers: 3, colluders: 0, lossless: true })
    const stack = await runStack(world)
    const fast = await runFast(world)
    expect(fast.epochs.map((e) => e.root)).toEqual(stack.epochs.map((e) => e.root))
    expect(stack.epochs.some((e) => e.payouts.size > 0)).toBe(true)
  }, 60_000)

  it('and with compute jobs, work receipts, fraud and slashing', async () => {
    const size = { seed: 5, nodes: 12, verifiers: 3, epochs: 3 }
    const build = scenarioByName('forger').build(size)
    const world = buildWorld({
      seed: 5,
      epochs: 3,
      fleet: build.fleet,
      verifiers: 3,
      colluders: 0,
      lossless: true,
    })
    world.jobs = drawJobs(world, 'forger')
    expect(world.jobs.some((j) => j.fraud)).toBe(true)
    expect(world.jobs.some((j) => j.verified)).toBe(true)
    const stack = await runStack(world)
    const fast = await runFast(world)
    expect(fast.epochs.map((e) => e.root)).toEqual(stack.epochs.map((e) => e.root))
    expect([...fast.slashed]).toEqual([...stack.slashed])
    expect(stack.slashed.size).toBe(2)
  }, 60_000)
})

describe('determinism', () => {
  it('gives byte-identical JSON for the same seed and different JSON for another (production stack)', async () => {
    const run = (seed: number) => simulate({ scenario: 'churn', nodes: 12, epochs: 3, seed, engine: 'stack' })
    const [a, b, c] = [await run(3), await run(3), await run(4)]
    expect(JSON.stringify(a)).toBe(JSON.stringify(b))
    expect(JSON.stringify(c)).not.toBe(JSON.stringify(a))
  }, 60_000)

  it('with weather stations and spoofers too (seeded device keys and weather)', async () => {
    const run = () =>
      simulate({ scenario: 'location-spoofer', nodes: 16, epochs: 2, seed: 5, engine: 'stack' })
    const [a, b] = [await run(), await run()]
    expect(JSON.stringify(a)).toBe(JSON.stringify(b))
    expect(a.perEpoch[1]?.pools.sensor).toBeGreaterThan(0)
  }, 60_000)

  it('the fast path refuses a scenario with sensors, naming the engine that runs it', async () => {
    await expect(
      simulate({ scenario: 'location-spoofer', nodes: 16, epochs: 2, engine: 'fast' }),
    ).rejects.toMatchObject({
      code: 'SIM_ENGINE_UNSUPPORTED',
      hint: expect.stringContaining('--engine stack'),
    })
  })

  it('the fast path too, at a larger size', async () => {
    const run = (seed: number) =>
      simulate({ scenario: 'baseline', nodes: 2_000, epochs: 3, seed, engine: 'fast' })
    const [a, b] = [await run(11), await run(11)]
    expect(JSON.stringify(a)).toBe(JSON.stringify(b))
    expect(a.honestShare).toBe(1)
    expect(a.perEpoch.every((e) => e.paid > 33_999 && e.paid <= 34_000)).toBe(true)
  }, 60_000)
})
