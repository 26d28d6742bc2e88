import { afterEach, describe, expect, it } from 'vitest'
import type { GossipMessage, NetworkPort } from '../../src/mesh/network-port.js'

/**
 * What each network port implementation gives the shared suite: `n` connected ports, and a way to
 * let network time pass (real time for libp2p, virtual time for the simulator).
 */
export interface PortHarness {
  ports: NetworkPort[]
  /** Resolves once `condition()` holds, letting network time pass; rejects after `timeoutMs` of it. */
  until(condition: () => boolean, timeoutMs?: number): Promise<void>
  /** Settles `promise`, letting network time pass while it is pending (rejects after `timeoutMs`). */
  settle<T>(promise: Promise<T>, timeoutMs?: number): Promise<T>
  /** A well-formed peer id of no node in this network. */
  strangerPeerId: string
  close(): Promise<void>
}

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

/** Settles to the error's code, or 'ok'. */
async function codeOf(h: PortHarness, p: Promise<unknown>, timeoutMs?: number): Promise<string> {
  try {
    await h.settle(p, timeoutMs)
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded: ${(err as Error).message}`
  }
}

/**
 * The suite every {@link NetworkPort} implementation must pass (as libp2p's
 * interface-compliance-tests do for its modules).
 */
export function networkPortCompliance(name: string, create: (n: number) => Promise<PortHarness>): void {
  describe(`NetworkPort compliance: ${name}`, () => {
    let h: PortHarness | undefined
    const start = async (n: number) => {
      h = await create(n)
      return h
    }
    afterEach(async () => {
      await h?.close()
      h = undefined
    })

    it('delivers gossip to every other subscriber exactly once, and not back to the publisher', async () => {
      const h = await start(3)
      const [a, b, c] = h.ports as [NetworkPort, NetworkPort, NetworkPort]
      const got = new Map<string, GossipMessage[]>([
        [a.peerId, []],
        [b.peerId, []],
        [c.peerId, []],
      ])
      for (const p of [a, b, c]) {
        p.subscribe('compliance/topic', (m) => {
          got.get(p.peerId)?.push(m)
          return 'accept'
        })
      }
      await h.until(() => a.topicPeers('compliance/topic').length === 2)
      await h.settle(a.publish('compliance/topic', enc('hello')))
      await h.until(() => (got.get(b.peerId)?.length ?? 0) >= 1 && (got.get(c.peerId)?.length ?? 0) >= 1)
      // Give duplicates a chance to show up.
      await h.until(() => false, 300).catch(() => undefined)
      for (const p of [b, c]) {
        expect(got.get(p.peerId)).toEqual([{ topic: 'compliance/topic', from: a.peerId, data: enc('hello') }])
      }
      expect(got.get(a.peerId)).toEqual([])
    })

    it('stops delivering after unsubscribe', async () => {
      const h = await start(2)
      const [a, b] = h.ports as [NetworkPort, NetworkPort]
      const got: string[] = []
      const off = b.subscribe('compliance/off', (m) => {
        got.push(dec(m.data))
        return 'accept'
      })
      a.subscribe('compliance/off', () => 'accept')
      await h.until(() => a.topicPeers('compliance/off').includes(b.peerId))
      await h.settle(a.publish('compliance/off', enc('one')))
      await h.until(() => got.length === 1)
      off()
      await h.until(() => !a.topicPeers('compliance/off').includes(b.peerId))
      await h.settle(a.publish('compliance/off', enc('two'))).catch(() => undefined)
      await h.until(() => false, 300).catch(() => undefined)
      expect(got).toEqual(['one'])
    })

    it("answers a request with the handler's response and tells the handler who asked", async () => {
      const h = await start(2)
      const [a, b] = h.ports as [NetworkPort, NetworkPort]
      b.handle('/compliance/echo/1', async (req, ctx) => enc(`${ctx.from}:${ctx.protocol}:${dec(req)}`))
      const res = await h.settle(a.request(b.peerId, '/compliance/echo/1', enc('ping')))
      expect(dec(res)).toBe(`${a.peerId}:/compliance/echo/1:ping`)
      // Empty messages are messages too.
      b.handle('/compliance/empty/1', async () => new Uint8Array())
      expect(await h.settle(a.request(b.peerId, '/compliance/empty/1', new Uint8Array()))).toEqual(
        new Uint8Array(),
      )
    })

    it('refuses a protocol nobody serves, a stopped protocol, and an unknown peer, with codes', async () => {
      const h = await start(2)
      const [a, b] = h.ports as [NetworkPort, NetworkPort]
      expect(await codeOf(h, a.request(b.peerId, '/compliance/nobody/1', enc('x')))).toBe(
        'PROTOCOL_NOT_SUPPORTED',
      )
      b.handle('/compliance/gone/1', async () => enc('here'))
      expect(await codeOf(h, a.request(b.peerId, '/compliance/gone/1', enc('x')))).toBe('ok')
      b.unhandle('/compliance/gone/1')
      expect(await codeOf(h, a.request(b.peerId, '/compliance/gone/1', enc('x')))).toBe(
        'PROTOCOL_NOT_SUPPORTED',
      )
      expect(
        await codeOf(h, a.request(h.strangerPeerId, '/compliance/gone/1', enc('x'), { timeoutMs: 2_000 })),
      ).toBe('PEER_UNREACHABLE')
    })

    it("reports a handler's failure as REMOTE_ERROR and keeps serving", async () => {
      const h = await start(2)
      const [a, b] = h.ports as [NetworkPort, NetworkPort]
      let calls = 0
      b.handle('/compliance/flaky/1', async () => {
        calls++
        if (calls === 1) throw new Error('boom')
        return enc('fine')
      })
      expect(await codeOf(h, a.request(b.peerId, '/compliance/flaky/1', enc('x')))).toBe('REMOTE_ERROR')
      expect(dec(await h.settle(a.request(b.peerId, '/compliance/flaky/1', enc('x'))))).toBe('fine')
    })

    it('enforces the size caps on both sides', async () => {
      const h = await start(2)
      const [a, b] = h.ports as [NetworkPort, NetworkPort]
      b.handle('/compliance/small/1', async (req) => req, { maxRequestBytes: 1_000 })
      expect(await codeOf(h, a.request(b.peerId, '/compliance/small/1', new Uint8Array(1_000)))).toBe('ok')
      expect(await codeOf(h, a.request(b.peerId, '/compliance/small/1', new Uint8Array(1_001)))).toBe(
        'REQUEST_TOO_LARGE',
      )
      b.handle('/compliance/big/1', async () => new Uint8Array(5_000))
      expect(
        await codeOf(h, a.request(b.peerId, '/compliance/big/1', enc('x'), { maxResponseBytes: 4_999 })),
      ).toBe('RESPONSE_TOO_LARGE')
      // The server is still fine.
      expect(await codeOf(h, a.request(b.peerId, '/compliance/small/1', enc('x')))).toBe('ok')
    })

    it('times out a request the peer never answers', async () => {
      const h = await start(2)
      const [a, b] = h.ports as [NetworkPort, NetworkPort]
      b.handle('/compliance/silent/1', () => new Promise<Uint8Array>(() => undefined))
      expect(
        await codeOf(h, a.request(b.peerId, '/compliance/silent/1', enc('x'), { timeoutMs: 300 }), 5_000),
      ).toBe('REQUEST_TIMEOUT')
    })

    it("gives up on a request when the caller's signal aborts, with the caller's reason", async () => {
      const h = await start(2)
      const [a, b] = h.ports as [NetworkPort, NetworkPort]
      b.handle('/compliance/stuck/1', () => new Promise<Uint8Array>(() => undefined))
      b.handle('/compliance/echo-after/1', async (data) => data)
      const controller = new AbortController()
      const reason = new Error('the caller gave up')
      const pending = a.request(b.peerId, '/compliance/stuck/1', enc('x'), { signal: controller.signal })
      await h.until(() => false, 200).catch(() => undefined)
      controller.abort(reason)
      await expect(h.settle(pending, 5_000)).rejects.toBe(reason)
      const answer = await h.settle(a.request(b.peerId, '/compliance/echo-after/1', enc('still here')))
      expect(dec(answer)).toBe('still here')
    })

    it('measures the round trip time to a peer and lists connected peers', async () => {
      const h = await start(3)
      const [a, b, c] = h.ports as [NetworkPort, NetworkPort, NetworkPort]
      await h.until(() => a.peers().includes(b.peerId) && a.peers().includes(c.peerId))
      const rtt = await h.settle(a.rtt(b.peerId))
      expect(rtt).toBeGreaterThanOrEqual(0)
      expect(rtt).toBeLessThan(1_000)
    })

    it('fails every call after close with PORT_CLOSED', async () => {
      const h = await start(2)
      const [a, b] = h.ports as [NetworkPort, NetworkPort]
      await a.close()
      expect(await codeOf(h, a.publish('compliance/closed', enc('x')))).toBe('PORT_CLOSED')
      expect(await codeOf(h, a.request(b.peerId, '/compliance/echo/1', enc('x')))).toBe('PORT_CLOSED')
    })
  })
}
