import { afterEach, describe, expect, it } from 'vitest'
import { systemClock } from '../core/clock.js'
import { createLogger } from '../core/logger.js'
import { createApiServer } from './api-server.js'
import type { ApiDataSource, ApiEvent } from './data-source.js'
import { ApiError } from './errors.js'
import { JobLog } from './job-log.js'
import type { EpochView, GovernanceView, NetworkView, NodeView } from './schemas.js'

const PEER = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const ADDRESS = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8'

const network: NetworkView = {
  chainId: 31337,
  network: `31337:${ADDRESS}`,
  contracts: { MeshToken: ADDRESS },
  genesisTime: 1_000,
  epochDuration: 15,
  epoch: 3,
  epochEndsAt: 1_060,
  head: { block: 40, timestamp: 1_050 },
  lastPostedEpoch: 1,
  nodes: 1,
  nodesOnline: 1,
  verifiers: [],
  totalEarned: '100',
  totalClaimed: '0',
  features: ['nodes', 'epochs', 'jobs'],
}
const node: NodeView = {
  peerId: PEER,
  operator: ADDRESS,
  services: ['compute'],
  h3Cell: '871f1d489ffffff',
  lat: 52.5,
  lon: 13.4,
  stake: '1000000000000000000000',
  registeredAt: 1_001,
  online: true,
  lastSeen: 5,
  uptimePpm: 1_000_000,
  lastReward: '100',
  earned: '100',
}
const epoch: EpochView = {
  epoch: 1,
  root: `0x${'ab'.repeat(32)}`,
  cid: 'bagaaiera',
  block: 30,
  postedAt: 1_031,
  emitted: '100',
  paid: '100',
  totalCumulative: '100',
  claimed: '0',
}

/** An in-memory source with one node and one posted epoch. */
function memorySource(jobs = new JobLog()) {
  const listeners = new Set<(e: ApiEvent) => void>()
  const source: ApiDataSource & { emit(e: ApiEvent): void; listeners: number } = {
    network: async () => network,
    nodes: async () => [node],
    node: async (id) =>
      id === PEER
        ? { node, epochs: [], claimed: '0', estimate: { nextEpoch: '0', thresholdPpm: 0, summary: '' } }
        : undefined,
    epochs: async (limit) => ({ epochs: [epoch].slice(0, limit), current: 3 }),
    epoch: async (n) => {
      if (n === 99) throw new ApiError('API_SOURCE_UNAVAILABLE', 'no verifier answered')
      return n === 1
        ? {
            epoch,
            matches: true,
            paramsVersion: 1,
            pools: { uptime: '100' },
            dust: '0',
            verifiers: [],
            nodes: [],
          }
        : undefined
    },
    jobs: async (limit) => jobs.list(limit),
    subscribe(l) {
      listeners.add(l)
      return () => listeners.delete(l)
    },
    emit: (e) => {
      for (const l of listeners) l(e)
    },
    get listeners() {
      return listeners.size
    },
  }
  return source
}

const apps: { close(): Promise<unknown> }[] = []
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close()
})

function app(source = memorySource(), init = {}) {
  const a = createApiServer(init, { source, clock: systemClock, logger: createLogger({ level: 'silent' }) })
  apps.push(a)
  return a
}

describe('HTTP API', () => {
  it('serves the network, nodes, a node, epochs, an epoch and jobs as schema-shaped JSON', async () => {
    const jobs = new JobLog()
    jobs.record({
      id: 'j1',
      kind: 'js',
      at: 1,
      ok: true,
      provider: PEER,
      tier: 'edge',
      latencyMs: 3.5,
      verification: 'verified',
      price: '10',
    })
    const a = app(memorySource(jobs))
    expect((await a.inject('/api/network')).json()).toEqual(network)
    expect((await a.inject('/api/nodes')).json()).toEqual({ nodes: [node] })
    expect((await a.inject(`/api/nodes/${PEER}`)).json().node.peerId).toBe(PEER)
    expect((await a.inject('/api/epochs?limit=1')).json()).toEqual({ epochs: [epoch], current: 3 })
    expect((await a.inject('/api/epochs/1')).json().matches).toBe(true)
    const listed = (await a.inject('/api/jobs')).json()
    expect(listed.jobs).toHaveLength(1)
    expect(listed.jobs[0]).toMatchObject({ id: 'j1', tier: 'edge', latencyMs: 3.5 })
  })

  it('answers bad parameters with 400 INVALID_ARGUMENT and a JSON body', async () => {
    const a = app()
    for (const url of [
      '/api/epochs/abc',
      '/api/epochs/-1',
      '/api/epochs/1234567890',
      '/api/epochs?limit=0',
      '/api/epochs?limit=501',
      '/api/epochs?limit=ten',
      '/api/jobs?limit=1e9',
      '/api/nodes/not-a-peer-id',
      `/api/nodes/${'a'.repeat(129)}`,
    ]) {
      const res = await a.inject(url)
      expect(res.statusCode, url).toBe(400)
      expect(res.headers['content-type']).toMatch(/application\/json/)
      const body = res.json()
      expect(body.error.code, url).toBe('INVALID_ARGUMENT')
      expect(body.error.message.length).toBeGreaterThan(0)
    }
  })

  it('answers unknown routes, nodes and epochs with 404 JSON, and source failures with 503', async () => {
    const a = app()
    for (const [url, code] of [
      ['/api/nope', 'API_ROUTE_NOT_FOUND'],
      ['/nope', 'API_ROUTE_NOT_FOUND'],
      [`/api/nodes/${PEER.replace('D', 'E')}`, 'API_NODE_NOT_FOUND'],
      ['/api/epochs/7', 'API_EPOCH_NOT_FOUND'],
      [`/api/${'x'.repeat(3_000)}`, 'API_ROUTE_NOT_FOUND'],
    ] as const) {
      const res = await a.inject(url)
      expect(res.statusCode, url).toBe(404)
      expect(res.json().error.code).toBe(code)
    }
    const post = await a.inject({ method: 'POST', url: '/api/network', payload: { a: 1 } })
    expect(post.statusCode).toBe(404)
    const down = await a.inject('/api/epochs/99')
    expect(down.statusCode).toBe(503)
    expect(down.json().error.code).toBe('API_SOURCE_UNAVAILABLE')
  })

  it('answers an unexpected failure with 500 INTERNAL and no stack', async () => {
    const source = memorySource()
    source.network = async () => {
      throw new Error('secret internals')
    }
    const res = await app(source).inject('/api/network')
    expect(res.statusCode).toBe(500)
    expect(res.json()).toEqual({ error: { code: 'INTERNAL', message: 'unexpected error' } })
  })

  it('answers only for the host names it was given (no DNS rebinding of a loopback server)', async () => {
    const a = app(memorySource(), { allowedHostnames: ['127.0.0.1', 'localhost'] })
    expect((await a.inject({ url: '/api/network', headers: { host: '127.0.0.1:7070' } })).statusCode).toBe(
      200,
    )
    expect((await a.inject({ url: '/api/network', headers: { host: 'localhost' } })).statusCode).toBe(200)
    const rebound = await a.inject({ url: '/api/network', headers: { host: 'evil.example:7070' } })
    expect(rebound.statusCode).toBe(400)
    expect(rebound.json().error.code).toBe('INVALID_ARGUMENT')
  })

  it('publishes an OpenAPI 3.1 document of every route', async () => {
    const doc = (await app().inject('/api/openapi.json')).json()
    expect(doc.openapi).toBe('3.1.0')
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/api/epochs',
        '/api/epochs/{n}',
        '/api/events',
        '/api/jobs',
        '/api/network',
        '/api/governance',
        '/api/governance/proposals/{id}',
        '/api/nodes',
        '/api/nodes/{peerId}',
        '/api/sensors/latest',
      ].sort(),
    )
    expect(doc.paths['/api/nodes/{peerId}'].get.parameters[0]).toMatchObject({ name: 'peerId', in: 'path' })
    expect(
      doc.paths['/api/network'].get.responses['200'].content['application/json'].schema.properties.chainId,
    ).toBeDefined()
  })

  it('serves the dashboard files it was given, and nothing outside them', async () => {
    const files = new Map([
      [
        '/index.html',
        {
          body: Buffer.from('<!doctype html><title>Meshwork</title>'),
          contentType: 'text/html',
          immutable: false,
        },
      ],
      [
        '/assets/app-1.js',
        { body: Buffer.from('console.log(1)'), contentType: 'text/javascript', immutable: true },
      ],
    ])
    const a = app(memorySource(), { staticFiles: files })
    const index = await a.inject('/')
    expect(index.statusCode).toBe(200)
    expect(index.body).toContain('Meshwork')
    expect(index.headers['content-security-policy']).toContain("default-src 'self'")
    expect((await a.inject('/assets/app-1.js')).headers['cache-control']).toContain('immutable')
    for (const url of [
      '/../package.json',
      '/assets/../../package.json',
      '/%2e%2e/package.json',
      '/api/index.html',
    ])
      expect((await a.inject(url)).statusCode, url).toBe(404)
  })

  it('streams live changes as server-sent events over a real socket, and caps the streams', async () => {
    const source = memorySource()
    const a = app(source, { maxStreams: 1 })
    await a.listen({ host: '127.0.0.1', port: 0 })
    const { port } = a.server.address() as { port: number }
    const controller = new AbortController()
    const res = await fetch(`http://127.0.0.1:${port}/api/events`, { signal: controller.signal })
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/)
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const deadline = Date.now() + 5_000
    while (source.listeners === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    const second = await fetch(`http://127.0.0.1:${port}/api/events`)
    expect(second.status).toBe(503)
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('API_TOO_MANY_STREAMS')
    source.emit({ type: 'node', data: { ...node, online: false } })
    let text = ''
    while (!text.includes('event: node') || !text.endsWith('\n\n')) {
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    const data = /event: node\ndata: (.*)\n\n/.exec(text)?.[1] as string
    expect(JSON.parse(data)).toMatchObject({ peerId: PEER, online: false })
    controller.abort()
    const until = Date.now() + 5_000
    while (source.listeners > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
    expect(source.listeners).toBe(0)
  })
})

describe('HTTP API: sensors', () => {
  it('serves the latest checked readings near a place, nearest first, flagged; bad queries get 400', async () => {
    const { generateKeyPair } = await import('@libp2p/crypto/keys')
    const { cellToParent, latLngToCell } = await import('h3-js')
    const { createPeerSigner, createPeerVerifier } = await import('../mesh/peer-key.js')
    const { createWireCodec } = await import('../mesh/wire-codec.js')
    const { DeviceSigner } = await import('../sensors/device.js')
    const { SENSOR_DEVICE, SENSOR_READING, sensorTopic } = await import('../sensors/reading.js')
    const { SensorFeed } = await import('./sensor-feed.js')
    const { signMakerCertificate } = await import('../sensors/maker.js')
    const NET = 'api-net'
    // Berlin's station is certified by a hardware maker, Potsdam's by none.
    const maker = createPeerSigner(await generateKeyPair('Ed25519'))
    const now = Date.now()
    const handlers = new Map<string, (m: { data: Uint8Array; from: string }) => unknown>()
    const feed = new SensorFeed({
      port: {
        subscribe: (topic, h) => {
          handlers.set(topic, h as (m: { data: Uint8Array; from: string }) => unknown)
          return () => handlers.delete(topic)
        },
      },
      codec: createWireCodec({
        network: NET,
        signer: createPeerSigner(await generateKeyPair('Ed25519')),
        clock: { now: () => now },
        types: [SENSOR_READING],
        nextSeq: () => 1,
      }),
      verifier: createPeerVerifier(),
      network: NET,
      now: () => now,
    })
    // Two stations: Berlin and Potsdam (about 27 km away), each on its own node.
    const stations: InstanceType<typeof DeviceSigner>[] = []
    for (const [lat, lon] of [
      [52.52, 13.4],
      [52.39, 13.06],
    ] as const) {
      const h3 = latLngToCell(lat, lon, 7)
      feed.follow([h3])
      let seq = 0
      const nodeSigner = createPeerSigner(await generateKeyPair('Ed25519'))
      const key = await generateKeyPair('Ed25519')
      const device = createPeerSigner(key).peerId
      stations.push(
        new DeviceSigner({
          network: NET,
          key,
          ...(stations.length === 0 ? { maker: signMakerCertificate(maker, device, 'WS-2000') } : {}),
          kinds: ['temperature', 'humidity'],
          cell: cellToParent(h3, 5),
          nodeCodec: createWireCodec({
            network: NET,
            signer: nodeSigner,
            clock: { now: () => now },
            types: [SENSOR_DEVICE],
            nextSeq: () => ++seq,
          }),
          clock: { now: () => now },
        }),
      )
    }
    const deliver = (s: (typeof stations)[number], kind: 'temperature' | 'humidity', value: number) =>
      handlers.get(sensorTopic(NET, s.cell))?.({ data: s.sign({ kind, value, at: now }), from: 'x' })
    deliver(stations[0] as (typeof stations)[number], 'temperature', 21.5)
    deliver(stations[0] as (typeof stations)[number], 'humidity', 140)
    deliver(stations[1] as (typeof stations)[number], 'temperature', 20.9)
    // A forged reading is dropped, not served.
    const forged = JSON.parse(
      new TextDecoder().decode(stations[1]?.sign({ kind: 'temperature', value: 1, at: now })),
    )
    forged.body.value = 99
    handlers.get(sensorTopic(NET, stations[1]?.cell as string))?.({
      data: new TextEncoder().encode(JSON.stringify(forged)),
      from: 'x',
    })
    expect(feed.dropped).toBe(1)

    const source = memorySource()
    source.sensors = async (q) => feed.latest(q).map((r) => ({ ...r, score: null }))
    const a = app(source)
    const near = (await a.inject('/api/sensors/latest?near=52.52,13.40&radius=50&kind=temperature')).json()
    expect(near.readings.map((r: { value: number }) => r.value)).toEqual([21.5, 20.9])
    expect(near.readings[0]).toMatchObject({
      kind: 'temperature',
      unit: '°C',
      maker: maker.peerId,
      quality: { flag: 'ok' },
      score: null,
    })
    expect(near.readings[1]).not.toHaveProperty('maker')
    expect(near.readings[1].distanceKm).toBeGreaterThan(near.readings[0].distanceKm)
    // Within Berlin's cell centre's distance: Berlin's two readings, not Potsdam's.
    const close = (
      await a.inject(`/api/sensors/latest?near=52.52,13.40&radius=${near.readings[0].distanceKm + 1}`)
    ).json()
    expect(close.readings.map((r: { kind: string }) => r.kind).sort()).toEqual(['humidity', 'temperature'])
    expect(close.readings.find((r: { kind: string }) => r.kind === 'humidity').quality).toEqual({
      flag: 'suspect',
      reasons: ['out_of_bounds'],
    })
    expect((await a.inject('/api/sensors/latest')).json().readings).toHaveLength(3)
    for (const url of [
      '/api/sensors/latest?near=abc',
      '/api/sensors/latest?near=95,13&radius=5',
      '/api/sensors/latest?radius=5',
      '/api/sensors/latest?near=52.5,13.4&radius=0',
      '/api/sensors/latest?kind=wind',
      '/api/sensors/latest?limit=9999',
    ]) {
      const r = await a.inject(url)
      expect(r.statusCode, url).toBe(400)
      expect(r.json().error.code).toBe('INVALID_ARGUMENT')
    }
    // A source that serves no sensors answers 404.
    expect((await app().inject('/api/sensors/latest')).statusCode).toBe(404)
    feed.close()
  })
})

const governance: GovernanceView = {
  epoch: 3,
  version: 2,
  fromEpoch: 2,
  params: [{ key: 'weights.uptime', unit: 'bps', value: '3500', display: '3500 bps', description: 'uptime' }],
  makers: [],
  history: [
    {
      version: 2,
      fromEpoch: 2,
      applied: true,
      values: [
        { key: 'weights.uptime', unit: 'bps', value: '3500', display: '3500 bps', description: 'uptime' },
      ],
      changes: [
        { key: 'weights.uptime', from: '4000', to: '3500', fromDisplay: '4000 bps', toDisplay: '3500 bps' },
      ],
      makers: [],
      makersChange: null,
    },
    { version: 1, fromEpoch: 0, applied: true, values: [], changes: [], makers: [], makersChange: null },
  ],
  proposals: [
    {
      id: '1234567890123456789012345678901234567890',
      proposer: ADDRESS,
      description: 'Storage gets 25%',
      state: 'active',
      summary: 'active: voting until …',
      votes: { for: '10', against: '2', abstain: '0' },
      quorum: '5',
      snapshot: 1_040,
      deadline: 1_100,
      eta: 0,
      block: 39,
      changes: [
        { key: 'weights.storage', from: '2000', to: '2500', fromDisplay: '2000 bps', toDisplay: '2500 bps' },
      ],
      calls: [{ contract: 'NetworkParams', functionName: 'setParams' }],
      makers: null,
    },
  ],
}

describe('HTTP API: governance and storage', () => {
  function governed() {
    const source = memorySource()
    source.governance = async () => governance
    source.proposal = async (id) => governance.proposals.find((p) => p.id === id.toString())
    return app(source)
  }

  it('serves the parameters in force, their history and the proposals with state, votes and diff', async () => {
    const a = governed()
    const res = await a.inject('/api/governance')
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual(governance)
    const one = await a.inject(`/api/governance/proposals/${governance.proposals[0]?.id}`)
    expect(one.statusCode).toBe(200)
    expect(one.json()).toMatchObject({ state: 'active', votes: { for: '10' }, changes: [{ to: '2500' }] })
  })

  it('answers a bad proposal id with 400, an unknown one with 404, and a source without governance with 404', async () => {
    const a = governed()
    for (const url of [
      '/api/governance/proposals/abc',
      '/api/governance/proposals/-1',
      '/api/governance/proposals/0x12',
      `/api/governance/proposals/${'9'.repeat(79)}`,
      // Above 2^256 - 1, though 78 digits.
      `/api/governance/proposals/${'9'.repeat(78)}`,
    ]) {
      const r = await a.inject(url)
      expect(r.statusCode, url).toBe(400)
      expect(r.json().error.code, url).toBe('INVALID_ARGUMENT')
    }
    const unknown = await a.inject('/api/governance/proposals/42')
    expect(unknown.statusCode).toBe(404)
    expect(unknown.json().error).toMatchObject({ code: 'API_PROPOSAL_NOT_FOUND' })
    for (const url of ['/api/governance', '/api/governance/proposals/42']) {
      const r = await app().inject(url)
      expect(r.statusCode, url).toBe(404)
      expect(r.json().error.code).toBe('API_ROUTE_NOT_FOUND')
    }
  })

  it('serves a node’s storage (shards held, challenge results, bytes served) in the node and its summary', async () => {
    const source = memorySource()
    const storage = { shards: 2, bytes: 2048, challenges: 8, passed: 7, servedBytes: 4096 }
    source.nodes = async () => [{ ...node, storage }]
    source.node = async () => ({
      node: { ...node, storage },
      epochs: [],
      claimed: '0',
      estimate: { nextEpoch: '0', thresholdPpm: 0, summary: '' },
      storage: {
        shards: 2,
        bytes: 2048,
        files: 1,
        held: [{ cid: 'bafkreiabc', shard: 0, bytes: 1024, fromEpoch: 2, untilEpoch: 11 }],
        epochs: [
          {
            epoch: 1,
            challenges: 8,
            passed: 7,
            failed: 1,
            provenBytes: 0,
            servedBytes: 4096,
            downloaders: 1,
            storageReward: '0',
            bandwidthReward: '5',
            verifiers: [
              { verifier: PEER, challenges: 8, passed: 7, provenBytes: 0, servedBytes: 4096, downloaders: 1 },
            ],
          },
        ],
      },
    })
    const a = app(source)
    expect((await a.inject('/api/nodes')).json().nodes[0].storage).toEqual(storage)
    const detail = (await a.inject(`/api/nodes/${PEER}`)).json()
    expect(detail.storage.held[0]).toMatchObject({ cid: 'bafkreiabc', bytes: 1024 })
    expect(detail.storage.epochs[0]).toMatchObject({ passed: 7, failed: 1, servedBytes: 4096 })
  })
})

describe('StorageFeed', () => {
  it('keeps the unexpired shards of each holder from receipts it signed and published, and nothing else', async () => {
    const { generateKeyPair } = await import('@libp2p/crypto/keys')
    const { createPeerSigner } = await import('../mesh/peer-key.js')
    const { createWireCodec } = await import('../mesh/wire-codec.js')
    const { STORAGE_MESSAGES, STORAGE_RECEIPT, BANDWIDTH_RECEIPT } = await import('../storage/protocol.js')
    const { StorageFeed } = await import('./storage-feed.js')
    const NET = 'api-net'
    const now = 1_000_000
    const codecOf = async () => {
      const signer = createPeerSigner(await generateKeyPair('Ed25519'))
      let seq = 0
      return {
        peerId: signer.peerId,
        codec: createWireCodec({
          network: NET,
          signer,
          clock: { now: () => now },
          types: [...STORAGE_MESSAGES],
          nextSeq: () => ++seq,
        }),
      }
    }
    const holder = await codecOf()
    const other = await codecOf()
    const feed = new StorageFeed({
      port: { subscribe: () => () => undefined },
      codec: (await codecOf()).codec,
      network: NET,
      // Epochs of 10 s from 0.
      epochAt: (ms) => Math.floor(ms / 10_000),
    })
    const receipt = (shard: number, epochs: number) =>
      holder.codec.encode(STORAGE_RECEIPT, {
        cid: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku',
        shard,
        root: 'ab'.repeat(32),
        bytes: 1_000 + shard,
        chunkBytes: 1_024,
        owner: other.peerId,
        storedAt: now,
        epochs,
      }).bytes
    expect(feed.take(receipt(0, 5), holder.peerId)).toBe('accept')
    expect(feed.take(receipt(1, 1), holder.peerId)).toBe('accept')
    // Published by someone else than its signer: refused.
    expect(feed.take(receipt(2, 5), other.peerId)).toBe('reject')
    // A byte receipt travels on the same topic: not a shard.
    const served = other.codec.encode(BANDWIDTH_RECEIPT, {
      holder: holder.peerId,
      session: 'ab'.repeat(16),
      cid: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku',
      bytes: 10,
    }).bytes
    expect(feed.take(served, holder.peerId)).toBe('ignore')
    // Stored in epoch 100: challenged from 101, the first until 105, the second in 101 only.
    expect(feed.held(holder.peerId, 101).map((s) => [s.shard, s.fromEpoch, s.untilEpoch])).toEqual([
      [0, 101, 105],
      [1, 101, 101],
    ])
    expect(feed.held(holder.peerId, 102).map((s) => s.shard)).toEqual([0])
    expect(feed.held(other.peerId, 101)).toEqual([])
  })
})
