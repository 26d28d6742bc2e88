import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { challengeTimes } from '../verifier/schedule.js'
import { runFast } from './fast-engine.js'
import { honestFleet, isOnline, type Span } from './fleet.js'
import { SimRandom } from './random.js'
import { UptimeWorkers } from './uptime-workers.js'
import { buildWorld } from './world.js'

const hex = (n: bigint) => `0x${n.toString(16).padStart(64, '0')}`

describe('UptimeWorkers', () => {
  const workers = new UptimeWorkers({
    peerIds: [],
    verifiers: [],
    spans: new Float64Array(0),
    spanStart: new Int32Array(1),
    links: new Float64Array(0),
    genesisTime: 0,
    epochDuration: 3_600,
    challengesPerEpoch: 4,
    challengeTimeoutMs: 2_000,
    workers: 1,
  })
  afterAll(() => workers.close())

  it('draws the same schedule as challengeTimes, whatever the lengths of the ids (SHA-256 block edges)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
        fc.boolean(),
        fc.string({ maxLength: 150 }),
        fc.string({ unit: 'binary', maxLength: 150 }),
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 0, max: 2_000_000_000_000 }),
        fc.integer({ min: 100_000, max: 100_000_000 }),
        async (seed, upper, verifier, node, count, epochStartMs, epochDurationMs) => {
          const input = {
            seed: upper ? hex(seed).toUpperCase().replace('0X', '0x') : hex(seed),
            verifier,
            node,
            epochStartMs,
            epochDurationMs,
            count,
          }
          expect(await workers.challengeTimes(input)).toEqual(challengeTimes(input))
        },
      ),
      { numRuns: 300 },
    )
  })

  it('and for peer ids as the simulator derives them', async () => {
    const world = buildWorld({
      seed: 3,
      epochs: 1,
      fleet: honestFleet({ seed: 3, nodes: 20, epochs: 1, churn: { leave: 0, rejoin: 0, join: 0 } }),
      verifiers: 3,
      colluders: 0,
    })
    for (const v of world.verifiers)
      for (const node of world.peerIds) {
        const input = {
          seed: hex(BigInt(v.index) * 7919n + 12345n),
          verifier: v.signer.peerId,
          node,
          epochStartMs: 1_700_000_000_000,
          epochDurationMs: 3_600_000,
          count: 4,
        }
        expect(await workers.challengeTimes(input)).toEqual(challengeTimes(input))
      }
  })

  it('refuses what challengeTimes refuses', async () => {
    const input = { seed: hex(1n), verifier: 'v', node: 'n', epochStartMs: 0, epochDurationMs: 10, count: 20 }
    await expect(workers.challengeTimes({ ...input, seed: '0x12' })).rejects.toThrow(RangeError)
    await expect(workers.challengeTimes(input)).rejects.toThrow(RangeError)
  })
})

describe('UptimeWorkers.epoch', () => {
  it('counts what the fast engine counted one challenge at a time, however many workers split the nodes', async () => {
    const world = fc.record({
      identities: fc.integer({ min: 1, max: 40 }),
      verifiers: fc.integer({ min: 1, max: 4 }),
      count: fc.integer({ min: 1, max: 12 }),
      workers: fc.integer({ min: 1, max: 4 }),
      seed: fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
      random: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    })
    await fc.assert(
      fc.asyncProperty(world, async (w) => {
        const r = new SimRandom(w.random)
        const peerIds = Array.from(
          { length: w.identities },
          (_, i) => `node-${i}-${'x'.repeat(r.int(0, 70))}`,
        )
        const verifiers = Array.from({ length: w.verifiers }, (_, i) => `verifier-${i}`)
        const genesisTime = 1_700_000_000
        const epochDuration = 3_600
        const epoch = r.int(0, 5)
        // Sessions around the epoch, links lossy and slow enough that every branch is taken.
        const sessions: Span[][] = peerIds.map(() => {
          const out: Span[] = []
          for (let t = epoch - 1 + r.uniform(); t < epoch + 2; t += r.uniform() * 0.6) {
            const to = t + r.uniform() * 0.5
            out.push({ from: t, to })
            t = to
          }
          return out
        })
        const spanStart = new Int32Array(w.identities + 1)
        sessions.forEach((s, i) => {
          spanStart[i + 1] = (spanStart[i] as number) + s.length
        })
        const spans = Float64Array.from(sessions.flatMap((s) => s.flatMap((x) => [x.from, x.to])))
        const links = Float64Array.from({ length: w.verifiers * w.identities * 6 }, (_, j) =>
          j % 3 === 0 ? r.uniform() * 900 : j % 3 === 1 ? r.int(0, 1_500) : r.uniform() * 0.5,
        )
        const nodes = peerIds.map((_, i) => i).filter(() => r.chance(0.8))
        for (let i = nodes.length - 1; i > 0; i--) {
          const j = r.int(0, i)
          ;[nodes[i], nodes[j]] = [nodes[j] as number, nodes[i] as number]
        }
        const skip = verifiers.map(() =>
          nodes.length > 0 && r.chance(0.5) ? r.int(0, nodes.length - 1) : -1,
        )
        const streamSeeds = verifiers.map(() => r.int(0, 2 ** 32 - 1))
        const input = {
          seed: hex(w.seed),
          epochStartMs: (genesisTime + epoch * epochDuration) * 1000,
          epochDurationMs: epochDuration * 1000,
          streamSeeds,
          nodes,
          skip,
        }
        const pool = new UptimeWorkers({
          peerIds,
          verifiers,
          spans,
          spanStart,
          links,
          genesisTime,
          epochDuration,
          challengesPerEpoch: w.count,
          challengeTimeoutMs: 2_000,
          workers: w.workers,
        })
        try {
          const got = await pool.epoch(input)
          // The fast engine's loop before the workers: one verifier's stream, node after node.
          for (let v = 0; v < w.verifiers; v++) {
            const random = new SimRandom(streamSeeds[v] as number)
            for (let k = 0; k < nodes.length; k++) {
              const at = v * nodes.length + k
              if (k === skip[v]) {
                expect(got.answered[at]).toBe(-1)
                continue
              }
              const id = nodes[k] as number
              const l = links.subarray((v * w.identities + id) * 6)
              const times = challengeTimes({
                seed: input.seed,
                verifier: verifiers[v] as string,
                node: peerIds[id] as string,
                epochStartMs: input.epochStartMs,
                epochDurationMs: input.epochDurationMs,
                count: w.count,
              })
              let answered = 0
              let fastest = Number.POSITIVE_INFINITY
              for (const t of times) {
                const lostThere = random.uniform() < (l[2] as number)
                const oneWay = Math.round((l[0] as number) + random.uniform() * (l[1] as number))
                const lostBack = random.uniform() < (l[5] as number)
                const backWay = Math.round((l[3] as number) + random.uniform() * (l[4] as number))
                if (lostThere || lostBack || oneWay + backWay > 2_000) continue
                if (isOnline(sessions[id] as Span[], ((t + oneWay) / 1000 - genesisTime) / epochDuration)) {
                  answered++
                  fastest = Math.min(fastest, oneWay + backWay)
                }
              }
              expect([got.answered[at], got.fastest[at]]).toEqual([answered, fastest])
            }
          }
        } finally {
          await pool.close()
        }
      }),
      { numRuns: 40 },
    )
  }, 60_000)
})

describe('the fast engine on worker threads', () => {
  it('gives the same outcome with 1, 2 and 3 workers (message loss, churn and probes included)', async () => {
    const epochs = 3
    const fleet = honestFleet({ seed: 9, nodes: 301, epochs, churn: { leave: 0.2, rejoin: 0.5, join: 0.2 } })
    const world = buildWorld({ seed: 9, epochs, fleet, verifiers: 3, colluders: 0 })
    // Links far lossier and slower than the model's, so that the uptime scores depend on every draw.
    const model = world.latency
    world.latency = (from, to) => ({ ...model(from, to), lossRate: 0.2, jitterMs: 900 })
    const outcome = async (workers: number) => {
      const run = await runFast(world, { workers })
      return JSON.stringify(run, (_key, value) =>
        typeof value === 'bigint' ? value.toString() : value instanceof Map ? [...value] : value,
      )
    }
    const one = await outcome(1)
    expect(await outcome(2)).toBe(one)
    expect(await outcome(3)).toBe(one)
    // A non-trivial run: some challenges lost or missed, so that the split had something to change.
    const run = await runFast(world, { workers: 2 })
    expect(run.epochs.every((e) => e.payouts.size > 0)).toBe(true)
    expect(run.epochs.some((e) => e.scored < e.registered)).toBe(true)
  }, 60_000)
})
