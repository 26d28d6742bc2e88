import { createHash, randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { systemClock } from '../core/clock.js'
import { createLogger } from '../core/logger.js'
import { mulberry32 } from '../core/prng.js'
import { createPeerSigner, createPeerVerifier, type PeerSigner } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import { ComputeService, JOB_PROTOCOL, resultSigningBytes } from './job-protocol.js'
import { parseJobSpec } from './job-spec.js'
import type { ScoredQuote } from './placement.js'
import { SandboxPool } from './sandbox-pool.js'
import {
  DEFAULT_VERIFY_BOUNDS,
  NodeHistory,
  PPM,
  runVerified,
  verificationPpm,
  verificationProbability,
} from './verification.js'

const NET = '31337:0xregistry'
const pool = new SandboxPool({ size: 2 })
afterAll(() => pool.close())
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

const spec = (n: number) =>
  parseJobSpec({
    v: 1,
    id: randomBytes(16).toString('hex'),
    kind: 'js',
    code: { inline: Buffer.from('(x) => x * 2').toString('base64') },
    input: { inline: Buffer.from(String(n)).toString('base64') },
    limits: { timeMs: 500 },
    deadline: Date.now() + 60_000,
    maxPrice: '100',
  })

async function setup(cheatRate: number) {
  const net = new SimNetwork({ seed: 2, clock: systemClock, latency: () => ({ latencyMs: 1, jitterMs: 0 }) })
  const logger = createLogger({ level: 'silent' })
  const signers: PeerSigner[] = []
  for (let i = 0; i < 4; i++) signers.push(createPeerSigner(await generateKeyPair('Ed25519')))
  const [cheater, ...honest] = signers as [PeerSigner, ...PeerSigner[]]
  for (const s of honest) {
    const service = new ComputeService(
      { network: NET, price: 1n, now: () => Date.now() },
      { pool, signer: s },
    )
    await service.start({ port: net.createPort(s.peerId), clock: systemClock, logger, dir: '/tmp' })
  }
  // The cheater answers with a wrong output some of the time, signed like a real one.
  const draw = mulberry32(7)
  net.createPort(cheater.peerId).handle(JOB_PROTOCOL, async (request, ctx) => {
    const job = JSON.parse(new TextDecoder().decode(request)).spec
    const code = new Uint8Array(Buffer.from(job.code.inline, 'base64'))
    const input = new Uint8Array(Buffer.from(job.input.inline, 'base64'))
    const right = String(Number(new TextDecoder().decode(input)) * 2)
    const output = new TextEncoder().encode((draw() % 1000) / 1000 < cheatRate ? '0' : right)
    const hashes = { jobId: job.id, codeHash: sha(code), inputHash: sha(input), outputHash: sha(output) }
    const sig = cheater.sign(
      resultSigningBytes({ net: NET, ...hashes, node: cheater.peerId, client: ctx.from }),
    )
    return new TextEncoder().encode(
      JSON.stringify({
        ok: true,
        result: {
          ...hashes,
          output: Buffer.from(output).toString('base64'),
          ms: 1,
          sig: Buffer.from(sig).toString('base64url'),
        },
      }),
    )
  })
  const quote = (s: PeerSigner): ScoredQuote => ({
    jobId: '',
    node: s.peerId,
    price: 1n,
    load: 0,
    expiresAt: 0,
    sig: '',
    tier: 'edge',
    rttMs: 2,
    reputation: 1,
    score: 1,
  })
  return {
    client: net.createPort(createPeerSigner(await generateKeyPair('Ed25519')).peerId),
    cheater: cheater.peerId,
    quotes: [cheater, ...honest].map(quote),
  }
}

describe('verification by re-execution', () => {
  it('re-runs every job of a node it has no history with, less often as it proves itself', () => {
    expect(verificationProbability(0)).toBe(1)
    expect(verificationProbability(20)).toBe(0.5)
    expect(verificationProbability(80)).toBeCloseTo(0.2)
    expect(verificationProbability(10_000)).toBe(0.05)
    expect(verificationPpm(0)).toBe(PPM)
    expect(verificationPpm(20)).toBe(500_000)
    expect(verificationPpm(80)).toBe(200_000)
    expect(verificationPpm(10_000)).toBe(50_000)
  })

  it('the default bounds are the initial NetworkParams and keep the historic real-valued rule exactly', () => {
    expect(DEFAULT_VERIFY_BOUNDS).toEqual({ minPpm: 50_000, maxPpm: 1_000_000 })
    for (let clean = 0; clean < 2_000; clean++)
      expect(verificationProbability(clean)).toBe(Math.max(0.05, 1 / (1 + clean / 20)))
  })

  it('with any bounds min ≤ max: an integer ppm within [min, max], max for a new node, non-increasing as clean checks grow', () => {
    const bounds = fc
      .tuple(fc.integer({ min: 0, max: PPM }), fc.integer({ min: 0, max: PPM }))
      .map(([a, b]) => ({ minPpm: Math.min(a, b), maxPpm: Math.max(a, b) }))
    fc.assert(
      fc.property(bounds, fc.nat(1_000_000), fc.nat(1_000), (b, clean, more) => {
        const ppm = verificationPpm(clean, b)
        expect(Number.isInteger(ppm)).toBe(true)
        expect(ppm).toBeGreaterThanOrEqual(b.minPpm)
        expect(ppm).toBeLessThanOrEqual(b.maxPpm)
        expect(verificationPpm(clean + more, b)).toBeLessThanOrEqual(ppm)
        expect(verificationPpm(0, b)).toBe(b.maxPpm)
        const p = verificationProbability(clean, b)
        expect(p).toBeGreaterThanOrEqual(b.minPpm / PPM)
        expect(p).toBeLessThanOrEqual(b.maxPpm / PPM)
        // The integer rule is the real one rounded down to a whole ppm.
        expect(Math.abs(p * PPM - ppm)).toBeLessThan(1 + 1e-6)
      }),
      { numRuns: 500 },
    )
  })

  it('decides with the bounds it is given; a fixed probability overrides them', async () => {
    const { client, quotes } = await setup(0)
    const honest = quotes.slice(1)
    const history = new NodeHistory()
    for (let i = 0; i < 200; i++) history.recordClean(honest[0]?.node as string)
    const run = (options: { bounds?: { minPpm: number; maxPpm: number }; probability?: number }) =>
      runVerified(client, honest, spec(3), {
        network: NET,
        verifier: createPeerVerifier(),
        history,
        // Just below 1: only a rate of 100% re-runs it.
        random: () => 0.999_999,
        ...options,
      })
    // 200 clean checks: 5% by default, 100% when governance sets both bounds to 1,000,000.
    expect((await run({})).verification).toBe('signed')
    expect((await run({ bounds: { minPpm: PPM, maxPpm: PPM } })).verification).toBe('verified')
    expect((await run({ bounds: { minPpm: PPM, maxPpm: PPM }, probability: 0.5 })).verification).toBe(
      'signed',
    )
    const fresh = new NodeHistory()
    const once = (bounds: { minPpm: number; maxPpm: number }, draw: number) =>
      runVerified(client, honest, spec(4), {
        network: NET,
        verifier: createPeerVerifier(),
        history: fresh,
        random: () => draw,
        bounds,
      })
    // A node with no history: re-run with probability maxPpm, exactly (draw × 10^6 < maxPpm).
    expect((await once({ minPpm: 1, maxPpm: 250_000 }, 0.249_999)).verification).toBe('verified')
    expect((await once({ minPpm: 1, maxPpm: 250_000 }, 0.25)).verification).toBe('signed')
  })

  it('a mismatch goes to a third node: the cheater is caught, its signed result is the evidence, the builder gets the majority', async () => {
    const { client, cheater, quotes } = await setup(1)
    const history = new NodeHistory()
    const r = await runVerified(client, quotes, spec(21), {
      network: NET,
      verifier: createPeerVerifier(),
      history,
    })
    expect(new TextDecoder().decode(r.result.output)).toBe('42')
    expect(r.verification).toBe('majority')
    expect(r.evidence).toEqual([
      expect.objectContaining({ node: cheater, signedOutputHash: sha(new TextEncoder().encode('0')) }),
    ])
    // The evidence stands on its own: the cheater's signature over the wrong output's hash.
    const e = r.evidence[0] as (typeof r.evidence)[number]
    const signed = resultSigningBytes({
      net: NET,
      jobId: e.jobId,
      codeHash: e.codeHash,
      inputHash: e.inputHash,
      outputHash: e.signedOutputHash,
      node: e.node,
      client: e.client,
    })
    expect(createPeerVerifier().verify(cheater, signed, Buffer.from(e.sig, 'base64url'))).toBe(true)
    expect(history.caught(cheater)).toBe(true)
    expect(history.reputation(cheater)).toBe(0)
    // A caught node is not asked again.
    const next = await runVerified(client, quotes, spec(1), {
      network: NET,
      verifier: createPeerVerifier(),
      history,
    })
    expect(next.quote.node).not.toBe(cheater)
  })

  it('honest nodes agree: verified, and both gain history', async () => {
    const { client, quotes } = await setup(0)
    const history = new NodeHistory()
    const r = await runVerified(client, quotes.slice(1), spec(5), {
      network: NET,
      verifier: createPeerVerifier(),
      history,
    })
    expect(r.verification).toBe('verified')
    expect(history.clean(quotes[1]?.node as string)).toBe(1)
  })

  it('catches a node that cheats on 20% of jobs early, and never uses it again (adaptive p)', async () => {
    const { client, cheater, quotes } = await setup(0.2)
    const history = new NodeHistory()
    const random = mulberry32(11)
    let jobs = 0
    let caughtAt = 0
    let wrongAfterCaught = 0
    // The cheater is quoted first every time, as a cheap node would be.
    while (jobs < 40) {
      jobs++
      const r = await runVerified(client, quotes, spec(jobs), {
        network: NET,
        verifier: createPeerVerifier(),
        history,
        random: () => (random() % 10_000) / 10_000,
      })
      if (caughtAt > 0 && new TextDecoder().decode(r.result.output) !== String(jobs * 2)) wrongAfterCaught++
      if (caughtAt === 0 && history.caught(cheater)) caughtAt = jobs
    }
    // With p near 1 for a node without history, its first wrong answer is almost surely checked: a
    // 20% cheater is caught within its first few wrong answers (about 5 jobs each), here within 15.
    expect(caughtAt).toBeGreaterThan(0)
    expect(caughtAt).toBeLessThanOrEqual(15)
    expect(wrongAfterCaught).toBe(0)
  })
})
