import { generateKeyPair } from '@libp2p/crypto/keys'
import { latLngToCell } from 'h3-js'
import { describe, expect, it } from 'vitest'
import { VirtualClock } from '../core/virtual-clock.js'
import { createPeerSigner, createPeerVerifier, type PeerSigner } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import type { KnownAd } from '../node/ad-table.js'
import { parseJobSpec } from './job-spec.js'
import {
  candidatesFor,
  chooseQuote,
  placeJob,
  quoteScore,
  type ScoredQuote,
  serveQuotes,
} from './placement.js'

const NET = '31337:0xregistry'
const T0 = 1_800_000_000_000
const berlin = latLngToCell(52.52, 13.405, 7)
const potsdam = latLngToCell(52.39, 13.06, 7)
const paris = latLngToCell(48.857, 2.352, 7)

const ad = (
  peerId: string,
  o: { tier?: 'edge' | 'cloud'; cell?: string; price?: string; operator?: string } = {},
): KnownAd => ({
  peerId,
  seq: 1,
  expiresAt: T0 + 60_000,
  receivedAt: T0,
  ad: {
    operator: (o.operator ?? `0x${'1'.repeat(40)}`) as `0x${string}`,
    services: [{ name: 'compute', price: o.price ?? '100', unit: 'job' }],
    resources: { cores: 2, memoryMb: 4_096, diskFreeMb: 1_000, gpus: [] },
    h3Cell: o.cell ?? berlin,
    tier: o.tier ?? 'edge',
    version: 'test',
    addrs: [],
  },
})

const spec = (placement: Record<string, unknown> = {}, maxPrice = '1000') =>
  parseJobSpec({
    v: 1,
    id: 'c0ffee0000000000000000000000beef',
    kind: 'js',
    code: { inline: Buffer.from('(x) => x').toString('base64') },
    input: { inline: Buffer.from('1').toString('base64') },
    deadline: T0 + 60_000,
    maxPrice,
    placement,
  })

describe('candidatesFor', () => {
  const ads = [
    ad('near-edge', { cell: potsdam }),
    ad('far-edge', { cell: paris }),
    ad('cloud', { tier: 'cloud', cell: berlin, price: '10' }),
    ad('dear', { cell: berlin, price: '5000' }),
    ad('mine', { cell: paris, operator: `0x${'b'.repeat(40)}` }),
    { ...ad('expired'), expiresAt: T0 - 1 },
  ]
  const ids = (s: ReturnType<typeof spec>, own?: string[]) =>
    candidatesFor(ads, s, { now: T0, ...(own ? { ownOperators: own } : {}) }).map((c) => c.peerId)

  it('keeps unexpired compute nodes within the price cap, cheapest first without a place', () => {
    expect(ids(spec())).toEqual(['cloud', 'near-edge', 'far-edge', 'mine'])
  })
  it('filters by place (nearest first), tier and local-only', () => {
    expect(ids(spec({ near: { lat: 52.52, lon: 13.405, radiusKm: 100 } }))).toEqual(['cloud', 'near-edge'])
    expect(ids(spec({ near: { cell: berlin } }))).toEqual(['cloud', 'near-edge'])
    expect(ids(spec({ tier: 'edge' }))).toEqual(['near-edge', 'far-edge', 'mine'])
    expect(ids(spec({ localOnly: true }), [`0x${'B'.repeat(40)}`])).toEqual(['mine'])
    expect(ids(spec({ localOnly: true }))).toEqual([])
  })
})

describe('quoteScore and chooseQuote', () => {
  const q = (node: string, tier: 'edge' | 'cloud', rttMs: number, price: bigint): ScoredQuote => ({
    jobId: 'x',
    node,
    price,
    load: 0,
    expiresAt: T0,
    sig: '',
    tier,
    rttMs,
    reputation: 1,
    score: quoteScore({ rttMs, price, maxPrice: 1000n, reputation: 1, load: 0 }),
  })
  it('prefers a short round trip, then a low price; more load and less reputation score less', () => {
    expect(quoteScore({ rttMs: 5, price: 500n, maxPrice: 1000n, reputation: 1, load: 0 })).toBeGreaterThan(
      quoteScore({ rttMs: 100, price: 500n, maxPrice: 1000n, reputation: 1, load: 0 }),
    )
    expect(quoteScore({ rttMs: 5, price: 100n, maxPrice: 1000n, reputation: 1, load: 0 })).toBeGreaterThan(
      quoteScore({ rttMs: 5, price: 900n, maxPrice: 1000n, reputation: 1, load: 0 }),
    )
    expect(quoteScore({ rttMs: 5, price: 100n, maxPrice: 1000n, reputation: 0.2, load: 0.9 })).toBeLessThan(
      quoteScore({ rttMs: 5, price: 100n, maxPrice: 1000n, reputation: 1, load: 0 }),
    )
  })
  it('is edge first: a cloud quote wins only when no edge quote meets the round-trip cap', () => {
    const quotes = [q('edge-slow', 'edge', 120, 500n), q('cloud', 'cloud', 10, 10n)]
    expect(chooseQuote(quotes)).toMatchObject({ quote: { node: 'edge-slow' }, fallback: false })
    expect(chooseQuote(quotes, 50)).toMatchObject({ quote: { node: 'cloud' }, fallback: true })
    expect(chooseQuote(quotes, 5)).toBeUndefined()
  })
})

describe('placeJob over the simulated network', () => {
  it('asks the nearest nodes for signed quotes and picks edge first, falling back to cloud', async () => {
    const clock = new VirtualClock(T0)
    const rtts: Record<string, number> = {}
    const net = new SimNetwork({
      seed: 3,
      clock,
      latency: (from, to) => ({ latencyMs: (rtts[from] ?? rtts[to] ?? 2) / 2, jitterMs: 0 }),
    })
    const signers: Record<string, PeerSigner> = {}
    for (const name of ['near', 'far', 'cloud', 'liar', 'client'])
      signers[name] = createPeerSigner(await generateKeyPair('Ed25519'))
    const id = (n: string) => (signers[n] as PeerSigner).peerId
    rtts[id('near')] = 8
    rtts[id('far')] = 60
    rtts[id('cloud')] = 20
    rtts[id('liar')] = 4
    for (const name of ['near', 'far', 'cloud']) {
      serveQuotes(net.createPort(id(name)), {
        network: NET,
        signer: signers[name] as PeerSigner,
        price: () => (name === 'cloud' ? 50n : 200n),
        load: () => 0,
        now: () => clock.now(),
      })
    }
    // A node whose quote is signed by someone else: never chosen.
    serveQuotes(net.createPort(id('liar')), {
      network: NET,
      signer: { peerId: id('liar'), sign: (d) => (signers.far as PeerSigner).sign(d) },
      price: () => 1n,
      load: () => 0,
      now: () => clock.now(),
    })
    const client = net.createPort(id('client'))
    const ads = [
      ad(id('near'), { cell: potsdam, price: '200' }),
      ad(id('far'), { cell: paris, price: '200' }),
      ad(id('cloud'), { tier: 'cloud', cell: berlin, price: '50' }),
      ad(id('liar'), { cell: berlin, price: '1' }),
    ]
    const options = { network: NET, verifier: createPeerVerifier(), now: () => clock.now() }
    const run = async (placement: Record<string, unknown>, known = ads) => {
      const placing = placeJob(client, known, spec(placement), options)
      placing.catch(() => undefined)
      await clock.advance(2_000)
      return placing
    }
    // Every valid quote is weighed; the liar's (signed by another key) is dropped; edge first.
    const any = await run({})
    expect(any.quote.node).toBe(id('near'))
    expect(any.fallback).toBe(false)
    expect(any.quotes.map((x) => x.node).sort()).toEqual([id('near'), id('far'), id('cloud')].sort())
    expect(any.quotes.find((x) => x.node === id('near'))?.rttMs).toBe(8)
    // Edge nodes too slow for the cap: the cloud node wins, as a fallback.
    const edgeTooSlow = [
      ad(id('far'), { cell: paris, price: '200' }),
      ad(id('cloud'), { tier: 'cloud', price: '50' }),
    ]
    const fallback = await run({ maxRttMs: 25 }, edgeTooSlow)
    expect(fallback).toMatchObject({ quote: { node: id('cloud'), tier: 'cloud' }, fallback: true })
    // Nothing within the cap, or nothing in the tier: a clear error.
    await expect(run({ maxRttMs: 12, tier: 'cloud' })).rejects.toMatchObject({ code: 'JOB_NO_PROVIDER' })
    await expect(run({ near: { cell: paris }, tier: 'cloud' })).rejects.toMatchObject({
      code: 'JOB_NO_PROVIDER',
      message: expect.stringContaining('no advertised compute node'),
    })
  })
})
