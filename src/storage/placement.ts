import { getResolution, gridDisk, latLngToCell } from 'h3-js'
import type { KnownAd } from '../node/ad-table.js'

/**
 * Where a file's shards go. Candidates are nodes advertising storage with room for a shard; they are
 * ranked by a score (nearer, cheaper, more free space; optionally near a place), then picked greedily
 * so that the N holders are distinct operators and, where the network allows, distinct H3 cells:
 * one operator or one building going down takes at most one shard.
 */

/** What placement knows of a candidate. */
export interface StorageCandidate {
  peerId: string
  operator: string
  cell: string
  freeBytes: number
  /** Price per GiB-epoch, base units. */
  price: bigint
  /** Round trip, ms (undefined: not measured). */
  rttMs?: number
}

/** The storage offers among `ads` with room for `shardBytes` (the client's own peer excluded). */
export function storageCandidates(
  ads: readonly KnownAd[],
  shardBytes: number,
  self?: string,
): StorageCandidate[] {
  const out: StorageCandidate[] = []
  for (const a of ads) {
    if (a.peerId === self) continue
    const offer = a.ad.services.find((s) => s.name === 'storage')
    if (offer === undefined) continue
    const freeMb = Number(offer.params?.freeMb ?? 0)
    const freeBytes = Number.isFinite(freeMb) ? freeMb * 2 ** 20 : 0
    if (freeBytes < shardBytes) continue
    out.push({
      peerId: a.peerId,
      operator: a.ad.operator.toLowerCase(),
      cell: a.ad.h3Cell,
      freeBytes,
      price: BigInt(offer.price),
    })
  }
  return out
}

/** Options of {@link rankHolders}. */
export interface RankOptions {
  /** Prefer holders near this place (within `rings` H3 rings at the ads' resolution, default 3). */
  near?: { lat: number; lon: number } | { cell: string }
  rings?: number
}

/**
 * Candidates in the order to offer shards: a score first (RTT in ms, plus 50 ms per doubling of the
 * price over the cheapest, minus up to 20 ms for free space, minus 100 ms when near the wanted
 * place), then reordered so that each next pick adds a new operator, then a new cell, while any
 * remain. The first N are the holders unless some refuse; the rest are the fallbacks.
 */
export function rankHolders(
  candidates: readonly StorageCandidate[],
  options: RankOptions = {},
): StorageCandidate[] {
  let cheapest = candidates[0]?.price ?? 0n
  for (const c of candidates) if (c.price < cheapest) cheapest = c.price
  const mostFree = Math.max(1, ...candidates.map((c) => c.freeBytes))
  const nearCells = nearSet(candidates, options)
  const score = (c: StorageCandidate) => {
    const rtt = c.rttMs ?? 500
    const priceRatio = cheapest > 0n ? Number((c.price * 1000n) / cheapest) / 1000 : c.price > 0n ? 1024 : 1
    const pricePenalty = 50 * Math.log2(Math.max(1, priceRatio))
    const spaceBonus = 20 * (c.freeBytes / mostFree)
    const nearBonus = nearCells?.has(c.cell) ? 100 : 0
    return rtt + pricePenalty - spaceBonus - nearBonus
  }
  const sorted = [...candidates].sort((a, b) => score(a) - score(b) || (a.peerId < b.peerId ? -1 : 1))
  // Greedy diversity: a new operator and a new cell first, then a new operator, then anyone.
  const picked: StorageCandidate[] = []
  const operators = new Set<string>()
  const cells = new Set<string>()
  const left = [...sorted]
  while (left.length > 0) {
    let at = left.findIndex((c) => !operators.has(c.operator) && !cells.has(c.cell))
    if (at < 0) at = left.findIndex((c) => !operators.has(c.operator))
    if (at < 0) at = 0
    const [c] = left.splice(at, 1) as [StorageCandidate]
    picked.push(c)
    operators.add(c.operator)
    cells.add(c.cell)
  }
  return picked
}

function nearSet(candidates: readonly StorageCandidate[], options: RankOptions): Set<string> | undefined {
  if (options.near === undefined || candidates.length === 0) return undefined
  try {
    const resolution = getResolution((candidates[0] as StorageCandidate).cell)
    const center =
      'cell' in options.near
        ? options.near.cell
        : latLngToCell(options.near.lat, options.near.lon, resolution)
    return new Set(gridDisk(center, options.rings ?? 3))
  } catch {
    return undefined
  }
}
