import { cellToLatLng } from 'h3-js'
import { z } from 'zod'
import { canonicalJson } from '../core/canonical-json.js'
import type { NetworkPort } from '../mesh/network-port.js'
import type { PeerSigner, PeerVerifier } from '../mesh/peer-key.js'
import type { KnownAd } from '../node/ad-table.js'
import { ComputeError } from './errors.js'
import { JOB_KINDS, type JobSpec } from './job-spec.js'

/**
 * Placement: which node runs a job. The client filters the advertisements it knows by the job's
 * constraints, measures the round trip to the nearest few, asks them for signed quotes, scores the
 * quotes and picks, edge first: a cloud node wins only when no edge quote meets the constraints
 * (docs/protocol.md, "Placement"). Scores are the client's choice, not consensus: floats are fine.
 */

export const QUOTE_PROTOCOL = '/meshwork/quote/1'
const QUOTE_PREFIX = 'meshwork-quote-v1\n'
/** `near: {cell}` means within this many km of the cell's centre. */
export const NEAR_CELL_KM = 50

/** A node that may run the job, from its advertisement. */
export interface Candidate {
  peerId: string
  tier: 'edge' | 'cloud'
  operator: string
  price: bigint
  /** Distance from the job's `near` point, km (0 without one). */
  distanceKm: number
}

/** Great-circle distance in km. */
export function distanceKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const rad = Math.PI / 180
  const dLat = (b.lat - a.lat) * rad
  const dLon = (b.lon - a.lon) * rad
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2
  return 2 * 6_371 * Math.asin(Math.min(1, Math.sqrt(h)))
}

/**
 * The advertised compute nodes that meet a job's constraints: unexpired, offering compute at no more
 * than the job's price cap, in the tier it asks for, within its `near` radius, and, for `localOnly`,
 * operated by one of `ownOperators`. Nearest first (cheapest first without `near`).
 */
export function candidatesFor(
  ads: readonly KnownAd[],
  spec: Pick<JobSpec, 'placement' | 'maxPrice'> & { kind?: JobSpec['kind'] },
  options: { now: number; ownOperators?: readonly string[] },
): Candidate[] {
  const { placement } = spec
  const cap = BigInt(spec.maxPrice)
  const own = new Set((options.ownOperators ?? []).map((o) => o.toLowerCase()))
  const near = placement.near
  const centre =
    near === undefined
      ? undefined
      : 'cell' in near
        ? (([lat, lon]) => ({ lat, lon, radiusKm: NEAR_CELL_KM }))(cellToLatLng(near.cell))
        : near
  const out: Candidate[] = []
  for (const known of ads) {
    if (known.expiresAt <= options.now) continue
    const offer = known.ad.services.find((s) => s.name === 'compute')
    if (offer === undefined || BigInt(offer.price) > cap) continue
    // Nodes say which kinds they run (`params.kinds`, comma-separated); older ads ran wasm and js.
    const kinds = typeof offer.params?.kinds === 'string' ? offer.params.kinds.split(',') : ['wasm', 'js']
    if (spec.kind !== undefined && !kinds.includes(spec.kind)) continue
    if (placement.tier !== 'any' && known.ad.tier !== placement.tier) continue
    if (placement.localOnly && !own.has(known.ad.operator.toLowerCase())) continue
    let km = 0
    if (centre !== undefined) {
      const [lat, lon] = cellToLatLng(known.ad.h3Cell)
      km = distanceKm(centre, { lat, lon })
      if (km > centre.radiusKm) continue
    }
    out.push({
      peerId: known.peerId,
      tier: known.ad.tier,
      operator: known.ad.operator.toLowerCase(),
      price: BigInt(offer.price),
      distanceKm: km,
    })
  }
  return out.sort((a, b) =>
    centre !== undefined ? a.distanceKm - b.distanceKm : a.price < b.price ? -1 : a.price > b.price ? 1 : 0,
  )
}

/** A node's signed quote for a job. */
export interface Quote {
  jobId: string
  node: string
  price: bigint
  /** Share of its sandboxes busy, 0 to 1. */
  load: number
  expiresAt: number
  sig: string
}

/** What a client weighs for each quote. */
export interface ScoredQuote extends Quote {
  tier: 'edge' | 'cloud'
  rttMs: number
  /** 0 to 1, from the node's history (1 for a node with a clean record; placement gets it from outside). */
  reputation: number
  score: number
}

/**
 * The placement score of a quote, 0 to 1, higher is better: 50% round trip (0 ms scores 1, 500 ms or
 * more 0), 30% price (free 1, the cap 0), 10% reputation, 10% spare capacity.
 */
export function quoteScore(q: {
  rttMs: number
  price: bigint
  maxPrice: bigint
  reputation: number
  load: number
}): number {
  const rtt = 1 - Math.min(q.rttMs, 500) / 500
  const price = q.maxPrice === 0n ? 1 : 1 - Number((q.price * 10_000n) / q.maxPrice) / 10_000
  const clamp = (x: number) => Math.max(0, Math.min(1, x))
  return 0.5 * rtt + 0.3 * clamp(price) + 0.1 * clamp(q.reputation) + 0.1 * (1 - clamp(q.load))
}

/**
 * Picks among scored quotes, edge first: the best edge quote within `maxRttMs`; if there is none,
 * the best cloud quote within it (`fallback`: true). Undefined when nothing meets the constraints.
 */
export function chooseQuote(
  quotes: readonly ScoredQuote[],
  maxRttMs?: number,
): { quote: ScoredQuote; fallback: boolean } | undefined {
  const fits = quotes.filter((q) => maxRttMs === undefined || q.rttMs <= maxRttMs)
  const best = (tier: 'edge' | 'cloud') =>
    fits.filter((q) => q.tier === tier).sort((a, b) => b.score - a.score || (a.node < b.node ? -1 : 1))[0]
  const edge = best('edge')
  if (edge !== undefined) return { quote: edge, fallback: false }
  const cloud = best('cloud')
  return cloud === undefined ? undefined : { quote: cloud, fallback: quotes.some((q) => q.tier === 'edge') }
}

const quoteRequestSchema = z
  .object({
    jobId: z.string().regex(/^[0-9a-f]{32}$/),
    kind: z.enum(JOB_KINDS),
    timeMs: z.number().int().positive().max(60_000),
    maxPrice: z.string().regex(/^(0|[1-9][0-9]{0,30})$/),
  })
  .strict()
const quoteSchema = z
  .object({
    jobId: z.string().regex(/^[0-9a-f]{32}$/),
    price: z.string().regex(/^(0|[1-9][0-9]{0,30})$/),
    load: z.number().min(0).max(1),
    expiresAt: z.number().int().positive(),
    sig: z.string().regex(/^[A-Za-z0-9_-]{85}[AQgw]$/),
  })
  .strict()

/** The bytes a node signs for a quote. */
export function quoteSigningBytes(q: {
  net: string
  jobId: string
  node: string
  client: string
  price: bigint
  expiresAt: number
}): Uint8Array {
  return new TextEncoder().encode(
    QUOTE_PREFIX +
      canonicalJson({
        net: q.net,
        jobId: q.jobId,
        node: q.node,
        client: q.client,
        price: q.price.toString(),
        expiresAt: q.expiresAt,
      }),
  )
}

/**
 * Serves {@link QUOTE_PROTOCOL} for a node's compute service: quotes its price for a job it can take
 * (its price within the cap), valid for `validMs`, with its current load. Returns a stop function.
 */
export function serveQuotes(
  port: Pick<NetworkPort, 'handle' | 'unhandle'>,
  options: {
    network: string
    signer: PeerSigner
    price: () => bigint
    load: () => number
    now: () => number
    validMs?: number
    /** The job kinds this node runs (default all). */
    kinds?: readonly string[]
  },
): () => void {
  port.handle(
    QUOTE_PROTOCOL,
    async (request, ctx) => {
      const parsed = quoteRequestSchema.safeParse(JSON.parse(new TextDecoder().decode(request)))
      if (!parsed.success) throw new RangeError('not a quote request')
      if (options.kinds && !options.kinds.includes(parsed.data.kind))
        throw new RangeError(`this node does not run ${parsed.data.kind} jobs`)
      const price = options.price()
      if (price > BigInt(parsed.data.maxPrice)) throw new RangeError('over the price cap')
      const expiresAt = options.now() + (options.validMs ?? 10_000)
      const sig = options.signer.sign(
        quoteSigningBytes({
          net: options.network,
          jobId: parsed.data.jobId,
          node: options.signer.peerId,
          client: ctx.from,
          price,
          expiresAt,
        }),
      )
      return new TextEncoder().encode(
        JSON.stringify({
          jobId: parsed.data.jobId,
          price: price.toString(),
          load: Math.max(0, Math.min(1, options.load())),
          expiresAt,
          sig: Buffer.from(sig).toString('base64url'),
        }),
      )
    },
    { maxRequestBytes: 512 },
  )
  return () => port.unhandle(QUOTE_PROTOCOL)
}

/** The outcome of placing a job. */
export interface Placement {
  quote: ScoredQuote
  /** True when a cloud node won because no edge quote met the constraints. */
  fallback: boolean
  /** Every quote received, scored (for explanations). */
  quotes: ScoredQuote[]
}

/**
 * Places a job: candidates from the ads, round trips to the nearest `maxCandidates`, quotes from
 * them within `quoteTimeoutMs` (each checked: signed by the node for this client and job, within the
 * cap, unexpired; when none came in time, asked once more with four times the wait), scored and
 * chosen edge first.
 *
 * @throws ComputeError JOB_NO_PROVIDER when no node meets the constraints or none quoted in time.
 */
export async function placeJob(
  port: Pick<NetworkPort, 'peerId' | 'request' | 'rtt'>,
  ads: readonly KnownAd[],
  spec: JobSpec,
  options: {
    network: string
    verifier: PeerVerifier
    now: () => number
    ownOperators?: readonly string[]
    reputation?: (peerId: string) => number
    maxCandidates?: number
    quoteTimeoutMs?: number
  },
): Promise<Placement> {
  const candidates = candidatesFor(ads, spec, {
    now: options.now(),
    ...(options.ownOperators ? { ownOperators: options.ownOperators } : {}),
  })
  if (candidates.length === 0)
    throw new ComputeError(
      'JOB_NO_PROVIDER',
      'no advertised compute node meets the job’s placement and price',
      {
        hint: 'Relax placement (near, tier, local-only) or raise maxPrice',
      },
    )
  // Edge and cloud both get a chance at the shortlist: the nearest few of each.
  const limit = options.maxCandidates ?? 5
  const shortlist = [
    ...candidates.filter((c) => c.tier === 'edge').slice(0, limit),
    ...candidates.filter((c) => c.tier === 'cloud').slice(0, limit),
  ]
  const timeoutMs = options.quoteTimeoutMs ?? 500
  const cap = BigInt(spec.maxPrice)
  const request = new TextEncoder().encode(
    JSON.stringify({ jobId: spec.id, kind: spec.kind, timeMs: spec.limits.timeMs, maxPrice: spec.maxPrice }),
  )
  const ask = (timeoutMs: number) =>
    Promise.allSettled(
      shortlist.map(async (c): Promise<ScoredQuote | undefined> => {
        // A ping measures the round trip; when it cannot (busy ping streams under load), the quote's own
        // round trip does, which is at most a little longer.
        const pinged = await port.rtt(c.peerId, { timeoutMs }).catch(() => undefined)
        const asked = performance.now()
        const bytes = await port.request(c.peerId, QUOTE_PROTOCOL, request, {
          timeoutMs,
          maxResponseBytes: 1_024,
        })
        const rttMs = pinged ?? performance.now() - asked
        const q = quoteSchema.safeParse(JSON.parse(new TextDecoder().decode(bytes)))
        if (!q.success) return undefined
        const price = BigInt(q.data.price)
        const signed = quoteSigningBytes({
          net: options.network,
          jobId: spec.id,
          node: c.peerId,
          client: port.peerId,
          price,
          expiresAt: q.data.expiresAt,
        })
        const valid =
          q.data.jobId === spec.id &&
          price <= cap &&
          q.data.expiresAt > options.now() &&
          options.verifier.verify(c.peerId, signed, Buffer.from(q.data.sig, 'base64url'))
        if (!valid) return undefined
        const reputation = options.reputation?.(c.peerId) ?? 1
        return {
          jobId: spec.id,
          node: c.peerId,
          price,
          load: q.data.load,
          expiresAt: q.data.expiresAt,
          sig: q.data.sig,
          tier: c.tier,
          rttMs,
          reputation,
          score: quoteScore({ rttMs, price, maxPrice: cap, reputation, load: q.data.load }),
        }
      }),
    )
  const quotesOf = (settled: Awaited<ReturnType<typeof ask>>) =>
    settled.flatMap((s) => (s.status === 'fulfilled' && s.value !== undefined ? [s.value] : []))
  let quotes = quotesOf(await ask(timeoutMs))
  // Nobody answered in time (busy nodes, a loaded network): ask once more and wait longer, rather
  // than fail a job that a node would have taken a moment later.
  if (quotes.length === 0) quotes = quotesOf(await ask(timeoutMs * 4))
  const chosen = chooseQuote(quotes, spec.placement.maxRttMs)
  if (chosen === undefined)
    throw new ComputeError(
      'JOB_NO_PROVIDER',
      `no node quoted within the constraints (${quotes.length} quotes)`,
      {
        hint: 'Raise maxRttMs or maxPrice, or try again',
        details: { candidates: candidates.length, quotes: quotes.length },
      },
    )
  return { ...chosen, quotes }
}
