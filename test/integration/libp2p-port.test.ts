import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, Ed25519PrivateKey, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { createMeshLibp2p, type MeshLibp2p, type MeshLibp2pInit } from '../../src/mesh/create-libp2p.js'
import { createLibp2pPort, type Libp2pPortOptions, widenReceiveWindow } from '../../src/mesh/libp2p-port.js'
import type { NetworkPort } from '../../src/mesh/network-port.js'
import { networkPortCompliance, type PortHarness } from '../helpers/network-port-compliance.js'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

/** Polls `condition` every 20 ms until it holds; rejects after `timeoutMs` of real time. */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Settles `promise`, or rejects after `timeoutMs` of real time. */
async function settle<T>(promise: Promise<T>, timeoutMs = 15_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Not settled within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** The node's TCP address (with /p2p/), to bootstrap from. */
function tcpAddr(node: MeshLibp2p): string {
  const addr = node.getMultiaddrs().find((a) => !a.toString().includes('/ws'))
  if (addr === undefined) throw new Error('node has no TCP address')
  return addr.toString()
}

const connected = (a: MeshLibp2p, b: MeshLibp2p) => a.getConnections(b.peerId).length > 0

interface Mesh {
  nodes: MeshLibp2p[]
  ports: NetworkPort[]
  close(): Promise<void>
}

/** Every node started by a test, stopped in afterEach even when the test fails midway. */
const started = new Set<MeshLibp2p>()
afterEach(async () => {
  await Promise.all([...started].map((n) => n.stop()))
  started.clear()
})

async function startNode(init: MeshLibp2pInit): Promise<MeshLibp2p> {
  const node = await createMeshLibp2p(init)
  started.add(node)
  return node
}

/**
 * Starts `n` nodes on 127.0.0.1: the first is the bootstrap peer of the others. Resolves once every
 * other node is connected to it.
 */
async function startMesh(
  n: number,
  options: {
    keys?: Ed25519PrivateKey[]
    init?: (i: number) => Partial<MeshLibp2pInit>
    port?: (i: number) => Libp2pPortOptions
  } = {},
): Promise<Mesh> {
  const keys =
    options.keys ?? (await Promise.all(Array.from({ length: n }, () => generateKeyPair('Ed25519'))))
  const key = (i: number) => keys[i] as Ed25519PrivateKey
  const first = await startNode({ privateKey: key(0), ...options.init?.(0) })
  const rest = await Promise.all(
    Array.from({ length: n - 1 }, (_, j) =>
      startNode({ privateKey: key(j + 1), bootstrap: [tcpAddr(first)], ...options.init?.(j + 1) }),
    ),
  )
  const nodes = [first, ...rest]
  await until(() => rest.every((node) => connected(node, first) && connected(first, node)))
  const ports = nodes.map((node, i) => createLibp2pPort(node, options.port?.(i)))
  return {
    nodes,
    ports,
    close: async () => {
      await Promise.all(ports.map((p) => p.close()))
    },
  }
}

async function strangerPeerId(): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

networkPortCompliance('libp2p on 127.0.0.1', async (n): Promise<PortHarness> => {
  const mesh = await startMesh(n)
  return { ports: mesh.ports, until, settle, strangerPeerId: await strangerPeerId(), close: mesh.close }
})

describe('libp2p port', () => {
  it('keeps its peer id across a restart with the same key, and peers reconnect', async () => {
    const keys = [await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519')]
    const mesh = await startMesh(2, { keys })
    const [a, b] = mesh.nodes as [MeshLibp2p, MeshLibp2p]
    const bPort = mesh.ports[1] as NetworkPort
    const aPeerId = a.peerId.toString()
    const aTcp = tcpAddr(a).split('/p2p/')[0] as string

    // Restart the bootstrap node on the same address: b's dialer finds it again.
    await (mesh.ports[0] as NetworkPort).close()
    await until(() => !bPort.peers().includes(aPeerId))
    const a2 = await startNode({ privateKey: keys[0] as Ed25519PrivateKey, listen: [aTcp] })
    expect(a2.peerId.toString()).toBe(aPeerId)
    const a2Port = createLibp2pPort(a2)
    a2Port.handle('/test/hello/1', async (_req, ctx) => enc(`hello ${ctx.from}`))
    await until(() => bPort.peers().includes(aPeerId), 15_000)
    expect(dec(await settle(bPort.request(aPeerId, '/test/hello/1', new Uint8Array())))).toBe(
      `hello ${b.peerId.toString()}`,
    )

    // Restart the other node: same peer id, and it dials its bootstrap peer at start.
    const bPeerId = b.peerId.toString()
    await bPort.close()
    const b2 = await startNode({ privateKey: keys[1] as Ed25519PrivateKey, bootstrap: [tcpAddr(a2)] })
    expect(b2.peerId.toString()).toBe(bPeerId)
    const b2Port = createLibp2pPort(b2)
    await until(() => b2Port.peers().includes(aPeerId))
    expect(dec(await settle(b2Port.request(aPeerId, '/test/hello/1', new Uint8Array())))).toBe(
      `hello ${bPeerId}`,
    )
    await Promise.all([a2Port.close(), b2Port.close()])
  })

  it('does not forward gossip that a relay rejects, and lowers the sender’s score there', async () => {
    // Line A - B - C: A and C refuse each other, so everything from A to C goes through B.
    const topic = 'test/line'
    const keys = await Promise.all([0, 1, 2].map(() => generateKeyPair('Ed25519')))
    const [bId, aId, cId] = keys.map((k) => peerIdFromPrivateKey(k)) as [PeerId, PeerId, PeerId]
    const refuse = (other: PeerId) => ({
      denyDialPeer: (p: PeerId) => p.equals(other),
      denyInboundEncryptedConnection: (p: PeerId) => p.equals(other),
      denyOutboundEncryptedConnection: (p: PeerId) => p.equals(other),
    })
    const mesh = await startMesh(3, {
      keys,
      init: (i) => ({
        scoredTopics: [topic],
        ...(i === 1 ? { connectionGater: refuse(cId) } : i === 2 ? { connectionGater: refuse(aId) } : {}),
      }),
    })
    const [b, a, c] = mesh.ports as [NetworkPort, NetworkPort, NetworkPort]
    const bNode = mesh.nodes[0] as MeshLibp2p

    b.subscribe(topic, (m) => (dec(m.data).startsWith('bad') ? 'reject' : 'accept'))
    const atC: string[] = []
    c.subscribe(topic, (m) => {
      atC.push(`${m.from === aId.toString() ? 'A' : '?'}:${dec(m.data)}`)
      return 'accept'
    })
    a.subscribe(topic, () => 'accept')
    await until(() => b.topicPeers(topic).length === 2 && a.topicPeers(topic).includes(bId.toString()))

    // Pairs until the mesh B - C carries one: every "bad" went the same way just before its "good".
    for (let i = 0; !atC.some((m) => m.startsWith('A:good')); i++) {
      if (i > 50) throw new Error('no gossip reached C through B')
      await a.publish(topic, enc(`bad-${i}`))
      await a.publish(topic, enc(`good-${i}`))
      await until(() => atC.length > 0, 200).catch(() => undefined)
    }
    await until(() => false, 500).catch(() => undefined)
    expect(atC.every((m) => m.startsWith('A:good'))).toBe(true)
    expect(a.peers()).not.toContain(cId.toString())
    await until(() => bNode.services.pubsub.getScore(aId.toString()) < 0)
    await mesh.close()
  })

  it('survives garbage, oversized length prefixes and stalled requests, and keeps serving', async () => {
    const mesh = await startMesh(2, { port: () => ({ ioTimeoutMs: 500 }) })
    const [a, b] = mesh.ports as [NetworkPort, NetworkPort]
    const aNode = mesh.nodes[0] as MeshLibp2p
    const bId = (mesh.nodes[1] as MeshLibp2p).peerId
    const protocol = '/test/echo/1'
    b.handle(protocol, async (req) => req, { maxRequestBytes: 1_000 })

    /** Sends raw bytes on a fresh stream, optionally half-closes, and collects what comes back. */
    const raw = async (bytes: Uint8Array, closeWrite: boolean) => {
      const stream: Stream = await aNode.dialProtocol(bId, protocol)
      stream.send(bytes)
      if (closeWrite) await stream.close()
      const chunks: Uint8Array[] = []
      let error: string | undefined
      try {
        for await (const chunk of stream) chunks.push(chunk.subarray())
      } catch (err) {
        error = (err as Error).name
      }
      return { bytes: Buffer.concat(chunks), error }
    }

    // A length prefix of 4 GiB - 1: refused with an error frame before the payload is read.
    const huge = await settle(raw(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), true))
    expect(huge.bytes[0]).toBe(1)
    expect(huge.bytes.subarray(5).toString()).toBe('REQUEST_TOO_LARGE')

    // Half a length prefix, then the end: the stream is dropped without an answer.
    const truncated = await settle(raw(new Uint8Array([0x00, 0x00]), true))
    expect(truncated.bytes.byteLength).toBe(0)

    // A request that announces 10 bytes, sends 3 and stalls: reset at the server's deadline.
    const stalled = await settle(raw(new Uint8Array([0, 0, 0, 10, 1, 2, 3]), false))
    expect(stalled.bytes.byteLength).toBe(0)
    expect(stalled.error).toBeDefined()

    // A 2 MB request to a 1 KB cap: refused with REQUEST_TOO_LARGE, not a reset.
    const big = await settle(
      a.request(bId.toString(), protocol, new Uint8Array(2_000_000)).catch((err) => err.code),
    )
    expect(big).toBe('REQUEST_TOO_LARGE')

    expect(dec(await settle(a.request(bId.toString(), protocol, enc('still here'))))).toBe('still here')
    await mesh.close()
  })

  it('rejects gossip larger than the port’s cap before the handler sees it', async () => {
    const mesh = await startMesh(2, { port: (i) => (i === 1 ? { maxGossipBytes: 16 } : {}) })
    const [a, b] = mesh.ports as [NetworkPort, NetworkPort]
    const got: number[] = []
    b.subscribe('test/cap', (m) => {
      got.push(m.data.byteLength)
      return 'accept'
    })
    await until(() => a.topicPeers('test/cap').includes(b.peerId))
    await a.publish('test/cap', new Uint8Array(17))
    await a.publish('test/cap', new Uint8Array(16))
    await until(() => got.length > 0)
    await until(() => false, 300).catch(() => undefined)
    expect(got).toEqual([16])
    await mesh.close()
  })

  it('serves many requests at once without a listener-leak warning', async () => {
    // A put keeps dozens of requests in flight; each listens to the port's close signal until it
    // settles. Node warns past 10 listeners on one signal ("Possible EventTarget memory leak"),
    // which a user would see on stderr for every large put.
    const mesh = await startMesh(2)
    const [a, b] = mesh.ports as [NetworkPort, NetworkPort]
    b.handle('/test/echo/1', async (data) => data)
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      const bodies = Array.from({ length: 20 }, (_, i) => Uint8Array.of(i))
      const answers = await settle(
        Promise.all(
          bodies.map((d) => a.request(mesh.nodes[1]?.peerId.toString() as string, '/test/echo/1', d)),
        ),
      )
      expect(answers).toEqual(bodies)
      await new Promise((resolve) => setImmediate(resolve))
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([])
    } finally {
      process.off('warning', onWarning)
    }
    await mesh.close()
  })

  it('fails a request the peer refuses for too many streams at once, without waiting for the timeout', async () => {
    // The peer serves at most 4 streams of the protocol at once and resets the others right after
    // agreeing on the protocol, often before the requester listens to the stream.
    const mesh = await startMesh(2, { port: (i) => (i === 1 ? { maxInboundStreams: 4 } : {}) })
    const [a, b] = mesh.ports as [NetworkPort, NetworkPort]
    b.handle('/test/slow/1', async (data) => {
      await new Promise((resolve) => setTimeout(resolve, 300))
      return data
    })
    const to = mesh.nodes[1]?.peerId.toString() as string
    const results = await settle(
      Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          a.request(to, '/test/slow/1', Uint8Array.of(i), { timeoutMs: 30_000 }),
        ),
      ),
      10_000,
    )
    const refused = results
      .filter((r) => r.status === 'rejected')
      .map((r) => (r.reason as { code?: string }).code)
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThanOrEqual(4)
    expect(refused.length).toBeGreaterThan(0)
    expect(new Set(refused)).toEqual(new Set(['REMOTE_ERROR']))
    await mesh.close()
  })

  it('opens a stream’s receive window with one update, which a peer with yamux’s defaults honours', async () => {
    // A 1 MiB send from a peer that keeps yamux's defaults arrives in one data frame (one message
    // event) once the receiver widened its window, in 256 KiB frames otherwise, and in full either way.
    const mesh = await startMesh(2)
    const [a, b] = mesh.nodes as [MeshLibp2p, MeshLibp2p]
    const frames = async (widen: boolean) => {
      const protocol = `/test/window/${widen ? 'wide' : 'default'}/1`
      let events = 0
      let received = 0
      const all = new Promise<void>((resolve) => {
        void b.handle(protocol, (stream) => {
          if (widen) widenReceiveWindow(stream, 2 * 1024 * 1024)
          stream.addEventListener('message', (e) => {
            events++
            received += e.data.byteLength
            if (received >= 1 << 20) resolve()
          })
        })
      })
      const stream = await (a.getConnections(b.peerId)[0] as Connection).newStream(protocol)
      await new Promise((resolve) => setTimeout(resolve, 200)) // the window update, if any, arrives
      stream.send(new Uint8Array(1 << 20))
      await settle(all)
      await stream.close()
      return events
    }
    expect(await frames(false)).toBeGreaterThanOrEqual(4)
    expect(await frames(true)).toBe(1)
    await mesh.close()
  })

  it('reaches peers it is not connected to by their id alone from the moment it starts', async () => {
    // libp2p looks a peer it has no address for up in the DHT from inside its dial queue, and the
    // DHT's first self-query (a second after start) joins such a dial when it meets that peer: both
    // waited for each other until the self-query's deadline, 5 s, so for about 6 s after its start a
    // node could not reach such a peer (a verifier's first uptime challenges all missed).
    const mesh = await startMesh(7)
    for (const port of mesh.ports) port.handle('/test/hello/1', async () => enc('hello'))
    const fresh = await startNode({
      privateKey: await generateKeyPair('Ed25519'),
      bootstrap: [tcpAddr(mesh.nodes[0] as MeshLibp2p)],
    })
    const port = createLibp2pPort(fresh)
    const started = Date.now()
    // Every other node at once, as a verifier's challenges would: no address known for any of them.
    const answers = await Promise.allSettled(
      mesh.nodes.slice(1).map(async (node) => {
        const answer = await port.request(node.peerId.toString(), '/test/hello/1', new Uint8Array(), {
          timeoutMs: 4_000,
        })
        return { answer: dec(answer), ms: Date.now() - started }
      }),
    )
    const failed = answers.flatMap((a) => (a.status === 'rejected' ? [(a.reason as Error).message] : []))
    expect(failed).toEqual([])
    await port.close()
    await mesh.close()
  })
})
