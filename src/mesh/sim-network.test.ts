import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { networkPortCompliance, type PortHarness } from '../../test/helpers/network-port-compliance.js'
import { VirtualClock } from '../core/virtual-clock.js'
import type { NetworkPort } from './network-port.js'
import { type LinkProfile, SimNetwork } from './sim-network.js'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

/** Virtual ms a harness lets pass before giving up (longer than the default request timeout). */
const HARNESS_TIMEOUT_MS = 60_000

function harness(clock: VirtualClock, ports: NetworkPort[]): PortHarness {
  return {
    ports,
    async until(condition, timeoutMs = HARNESS_TIMEOUT_MS) {
      if (!(await clock.runUntil(condition, timeoutMs))) {
        throw new Error(`condition not met within ${timeoutMs} ms of virtual time`)
      }
    },
    async settle(promise, timeoutMs = HARNESS_TIMEOUT_MS) {
      let settled = false
      const done = () => {
        settled = true
      }
      promise.then(done, done)
      if (!(await clock.runUntil(() => settled, timeoutMs))) {
        throw new Error(`promise not settled within ${timeoutMs} ms of virtual time`)
      }
      return promise
    },
    strangerPeerId: 'sim-stranger',
    async close() {
      await Promise.all(ports.map((p) => p.close()))
    },
  }
}

networkPortCompliance('simulated network', async (n) => {
  const clock = new VirtualClock()
  const net = new SimNetwork({ seed: 7, clock })
  return harness(
    clock,
    Array.from({ length: n }, (_, i) => net.createPort(`sim-peer-${i}`)),
  )
})

/** A network of `n` ports named p0, p1, … on a fresh clock. */
function setup(n: number, init: { seed?: number | bigint; lossRate?: number; link?: LinkProfile } = {}) {
  const clock = new VirtualClock(0)
  const net = new SimNetwork({
    seed: init.seed ?? 1,
    clock,
    ...(init.lossRate === undefined ? {} : { lossRate: init.lossRate }),
    ...(init.link === undefined ? {} : { latency: () => init.link as LinkProfile }),
  })
  const ports = Array.from({ length: n }, (_, i) => net.createPort(`p${i}`))
  return { clock, net, ports, h: harness(clock, ports) }
}

/** Settles to the error's code, or 'ok'. */
async function codeOf(h: PortHarness, p: Promise<unknown>): Promise<string> {
  try {
    await h.settle(p)
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded: ${(err as Error).message}`
  }
}

/** The same operations on a network with `seed`; returns what each receiver saw and when. */
async function script(seed: number | bigint): Promise<string[]> {
  const { clock, ports } = setup(4, { seed })
  const log: string[] = []
  for (const p of ports) {
    p.subscribe('t', (m) => {
      log.push(`${clock.now()} ${p.peerId}<-${m.from} ${dec(m.data)}`)
      return 'accept'
    })
    p.handle('/echo/1', async (req, ctx) => {
      log.push(`${clock.now()} ${p.peerId} serves ${ctx.from} ${dec(req)}`)
      return req
    })
  }
  const calls: Promise<unknown>[] = []
  for (let i = 0; i < 20; i++) {
    const from = ports[i % 4] as NetworkPort
    const to = ports[(i * 3 + 1) % 4] as NetworkPort
    calls.push(from.publish('t', enc(`g${i}`)))
    calls.push(
      from
        .request(to.peerId, '/echo/1', enc(`r${i}`))
        .then((res) => log.push(`${clock.now()} ${dec(res)} back`)),
    )
    await clock.advance(i % 3)
  }
  await clock.advance(1_000)
  await Promise.all(calls)
  return log
}

describe('SimNetwork', () => {
  it('is deterministic: the same seed gives the same deliveries at the same times', async () => {
    const first = await script(42)
    expect(first.length).toBe(20 * 3 + 20 * 2)
    expect(await script(42)).toEqual(first)
    expect(await script(42n)).toEqual(first)
    // Another seed draws other jitter: same events, other times or order.
    const other = await script(43)
    expect(other).not.toEqual(first)
    expect([...other].map((l) => l.replace(/^\d+ /, '')).sort()).toEqual(
      [...first].map((l) => l.replace(/^\d+ /, '')).sort(),
    )
  })

  it('loses about lossRate of the messages', async () => {
    const { clock, net, ports } = setup(2, { seed: 2024, lossRate: 0.3 })
    const [a, b] = ports as [NetworkPort, NetworkPort]
    let got = 0
    b.subscribe('loss', () => {
      got++
      return 'accept'
    })
    const total = 2_000
    for (let i = 0; i < total; i++) await a.publish('loss', enc(String(i)))
    await clock.advance(100)
    expect(Math.abs(got / total - 0.7)).toBeLessThan(0.03)
    expect(net.stats()).toMatchObject({ delivered: got, dropped: total - got, undeliverable: 0 })
  })

  it('delivers every gossip message exactly once to every other subscriber when nothing is lost', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.integer({ min: 2, max: 5 }),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 5 })), { minLength: 1, maxLength: 25 }),
        fc.record({ latencyMs: fc.integer({ min: 0, max: 200 }), jitterMs: fc.integer({ min: 0, max: 50 }) }),
        async (seed, n, sends, link) => {
          const { clock, ports } = setup(n, { seed, lossRate: 0, link })
          const got = new Map<string, string[]>(ports.map((p) => [p.peerId, []]))
          for (const p of ports) {
            p.subscribe('all', (m) => {
              got.get(p.peerId)?.push(`${m.from}:${dec(m.data)}`)
              return 'accept'
            })
          }
          const sent: string[] = []
          for (const [k, [who, pause]] of sends.entries()) {
            const from = ports[who % n] as NetworkPort
            await from.publish('all', enc(String(k)))
            sent.push(`${from.peerId}:${k}`)
            await clock.advance(pause)
          }
          await clock.advance(link.latencyMs + link.jitterMs + 1)
          for (const p of ports) {
            const mine = got.get(p.peerId) ?? []
            expect([...mine].sort()).toEqual(sent.filter((s) => !s.startsWith(`${p.peerId}:`)).sort())
            // One link delivers in order: each sender's messages arrive as they were sent.
            for (const q of ports) {
              const fromQ = (list: string[]) => list.filter((s) => s.startsWith(`${q.peerId}:`))
              if (q !== p) expect(fromQ(mine)).toEqual(fromQ(sent))
            }
          }
        },
      ),
      { numRuns: 60 },
    )
  })

  it('delays messages on a link by its latency, both ways', async () => {
    const { clock, net, ports, h } = setup(3)
    const [a, b, c] = ports as [NetworkPort, NetworkPort, NetworkPort]
    net.setLink(a.peerId, b.peerId, { latencyMs: 100, jitterMs: 0 })
    const arrivals: Array<[string, number]> = []
    for (const p of [a, b, c]) {
      p.subscribe('slow', () => {
        arrivals.push([p.peerId, clock.now()])
        return 'accept'
      })
    }
    const t0 = clock.now()
    await a.publish('slow', enc('x'))
    await h.until(() => arrivals.length === 2)
    expect(arrivals[0]?.[0]).toBe(c.peerId)
    expect(arrivals[0]?.[1]).toBeLessThanOrEqual(t0 + 7)
    expect(arrivals[1]).toEqual([b.peerId, t0 + 100])

    b.handle('/echo/1', async (req) => req)
    expect(await h.settle(a.rtt(b.peerId))).toBe(200)
    const t1 = clock.now()
    await h.settle(a.request(b.peerId, '/echo/1', enc('y')))
    expect(clock.now() - t1).toBe(200)
    await b.publish('slow', enc('z'))
    const t2 = clock.now()
    await h.until(() => arrivals.some(([id, at]) => id === a.peerId && at === t2 + 100))
  })

  it('drops a link on disconnect: requests fail with PEER_UNREACHABLE, in flight too, until reconnected', async () => {
    const { net, ports, h } = setup(3)
    const [a, b, c] = ports as [NetworkPort, NetworkPort, NetworkPort]
    b.handle('/echo/1', async (req) => req)
    b.handle('/slow/1', () => new Promise(() => undefined))
    b.subscribe('t', () => 'accept')

    const inFlight = a.request(b.peerId, '/slow/1', enc('x'))
    await h.until(() => false, 50).catch(() => undefined)
    net.disconnect(a.peerId, b.peerId)
    expect(await codeOf(h, inFlight)).toBe('PEER_UNREACHABLE')
    expect(await codeOf(h, a.request(b.peerId, '/echo/1', enc('x')))).toBe('PEER_UNREACHABLE')
    expect(await codeOf(h, a.rtt(b.peerId))).toBe('PEER_UNREACHABLE')
    expect(a.peers()).toEqual([c.peerId])
    expect(b.peers()).toEqual([c.peerId])
    expect(a.topicPeers('t')).toEqual([])
    expect(c.topicPeers('t')).toEqual([b.peerId])
    expect(await codeOf(h, c.request(b.peerId, '/echo/1', enc('x')))).toBe('ok')

    net.connect(b.peerId, a.peerId)
    expect(a.topicPeers('t')).toEqual([b.peerId])
    expect(await codeOf(h, a.request(b.peerId, '/echo/1', enc('x')))).toBe('ok')
  })

  it('fails requests in flight to and from a port that closes, and frees its peer id', async () => {
    const { net, ports, h } = setup(2)
    const [a, b] = ports as [NetworkPort, NetworkPort]
    for (const p of [a, b]) p.handle('/slow/1', () => new Promise(() => undefined))
    const outcomes = Promise.allSettled([
      a.request(b.peerId, '/slow/1', enc('x')),
      b.request(a.peerId, '/slow/1', enc('x')),
    ])
    await h.until(() => false, 20).catch(() => undefined)
    await b.close()
    const codes = (await outcomes).map((o) => (o.status === 'rejected' ? o.reason.code : 'ok'))
    expect(codes).toEqual(['PEER_UNREACHABLE', 'PORT_CLOSED'])
    expect(a.peers()).toEqual([])
    await a.close()
    expect(() => a.subscribe('t', () => 'accept')).toThrow(expect.objectContaining({ code: 'PORT_CLOSED' }))
    expect(await codeOf(h, a.rtt(b.peerId))).toBe('PORT_CLOSED')

    const again = net.createPort(b.peerId)
    const c = net.createPort('p9')
    again.handle('/echo/1', async (req) => req)
    expect(dec(await h.settle(c.request(b.peerId, '/echo/1', enc('back'))))).toBe('back')
    expect(() => net.createPort('p9')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }))
  })

  it('fails its own requests in flight with PORT_CLOSED when the caller closes', async () => {
    const { ports, h } = setup(2)
    const [a, b] = ports as [NetworkPort, NetworkPort]
    b.handle('/slow/1', () => new Promise(() => undefined))
    const pending = codeOf(h, a.request(b.peerId, '/slow/1', enc('x')))
    await a.close()
    expect(await pending).toBe('PORT_CLOSED')
  })

  it('gives the receiver its own copy of the bytes', async () => {
    const { ports, h } = setup(3)
    const [a, b, c] = ports as [NetworkPort, NetworkPort, NetworkPort]
    const seen: Uint8Array[] = []
    for (const p of [b, c]) {
      p.subscribe('copy', (m) => {
        seen.push(m.data)
        return 'accept'
      })
    }
    const data = enc('abc')
    await a.publish('copy', data)
    data[0] = 0
    await h.until(() => seen.length === 2)
    expect(seen.map(dec)).toEqual(['abc', 'abc'])
    ;(seen[0] as Uint8Array)[1] = 0
    expect(dec(seen[1] as Uint8Array)).toBe('abc')

    const kept: Uint8Array[] = []
    b.handle('/keep/1', async (req) => {
      kept.push(req)
      return req
    })
    const req = enc('req')
    const res = await h.settle(a.request(b.peerId, '/keep/1', req))
    expect(res).not.toBe(kept[0])
    expect(kept[0]).not.toBe(req)
    res[0] = 0
    expect(dec(kept[0] as Uint8Array)).toBe('req')
  })

  it('counts reject verdicts against the sender, and aborts a request on its signal', async () => {
    const { net, ports, h } = setup(3)
    const [a, b, c] = ports as [NetworkPort, NetworkPort, NetworkPort]
    b.subscribe('judge', (m) => (dec(m.data) === 'bad' ? 'reject' : 'accept'))
    c.subscribe('judge', async () => 'reject' as const)
    await a.publish('judge', enc('bad'))
    await b.publish('judge', enc('good'))
    await h.until(() => net.stats().delivered === 3)
    await h.until(() => false, 10).catch(() => undefined)
    expect(net.stats().rejected).toEqual({ [a.peerId]: 2, [b.peerId]: 1 })

    b.handle('/slow/1', () => new Promise(() => undefined))
    const controller = new AbortController()
    const pending = a.request(b.peerId, '/slow/1', enc('x'), { signal: controller.signal })
    controller.abort(new Error('changed my mind'))
    await expect(h.settle(pending)).rejects.toThrow('changed my mind')
  })

  it('times out when the link loses everything', async () => {
    const { clock, net, ports, h } = setup(2)
    const [a, b] = ports as [NetworkPort, NetworkPort]
    net.setLink(a.peerId, b.peerId, { latencyMs: 5, jitterMs: 0, lossRate: 1 })
    b.handle('/echo/1', async (req) => req)
    const t0 = clock.now()
    expect(await codeOf(h, a.request(b.peerId, '/echo/1', enc('x'), { timeoutMs: 1_234 }))).toBe(
      'REQUEST_TIMEOUT',
    )
    expect(clock.now() - t0).toBe(1_234)
    expect(await codeOf(h, a.rtt(b.peerId, { timeoutMs: 500 }))).toBe('REQUEST_TIMEOUT')
  })
})
