import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import { Type } from 'typebox'
import type { Clock } from '../core/clock.js'
import { InvalidArgumentError, isMeshworkError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import { VERSION } from '../core/version.js'
import type { ApiDataSource, ApiEvent } from './data-source.js'
import { ApiError, statusOf } from './errors.js'
import {
  EpochDetailView,
  EpochListView,
  EpochParam,
  ErrorBody,
  GovernanceView,
  JobListView,
  LimitQuery,
  NetworkView,
  NodeDetailView,
  NodeView,
  PeerIdParam,
  ProposalIdParam,
  ProposalView,
  SensorListView,
  SensorQuery,
} from './schemas.js'
import type { StaticFile } from './static-files.js'

/** What {@link createApiServer} is configured with. */
export interface ApiServerInit {
  /** Most server-sent event streams open at once (default 64); more are refused with 503. */
  maxStreams?: number
  /** A comment line on every open stream this often, so proxies keep it open (default 15 s). */
  heartbeatMs?: number
  /** The built dashboard to serve at `/` (see `loadStaticFiles`); none: the API only. */
  staticFiles?: ReadonlyMap<string, StaticFile>
  /**
   * Host names (without the port) the server answers for; others get 400. The devnet passes the
   * loopback names, so a web page elsewhere cannot read it through DNS rebinding. Default: any.
   */
  allowedHostnames?: readonly string[]
}

/** The loopback host names, for {@link ApiServerInit.allowedHostnames}. */
export const LOOPBACK_HOSTNAMES: readonly string[] = ['127.0.0.1', 'localhost', '[::1]']

/** What {@link createApiServer} uses. */
export interface ApiServerComponents {
  source: ApiDataSource
  clock: Clock
  logger: Logger
}

/** Longest request URL taken (path and query). */
export const MAX_URL_LENGTH = 2_048
/** Default and largest `limit` of list routes. */
export const DEFAULT_LIMIT = 50

const errorResponses = { 400: ErrorBody, 404: ErrorBody, 500: ErrorBody, 503: ErrorBody }

/**
 * The Meshwork HTTP API (and, given `staticFiles`, the dashboard) as a fastify instance, not yet
 * listening: `app.inject()` in tests, `app.listen()` to serve.
 *
 * Routes (every one GET, every input schema-checked and size-capped, every answer JSON):
 * `/api/network`, `/api/nodes`, `/api/nodes/:peerId`, `/api/epochs?limit`, `/api/epochs/:n`,
 * `/api/jobs?limit`, `/api/sensors/latest`, `/api/governance`, `/api/governance/proposals/:id`,
 * `/api/events` (server-sent events) and `/api/openapi.json`. Bad parameters are
 * 400 with `{error: {code: 'INVALID_ARGUMENT', message}}`, unknown routes 404 `API_ROUTE_NOT_FOUND`.
 *
 * @example
 * ```ts
 * const app = createApiServer({}, { source, clock: systemClock, logger })
 * await app.listen({ host: '127.0.0.1', port: 7070 })
 * ```
 */
export function createApiServer(init: ApiServerInit, components: ApiServerComponents): FastifyInstance {
  const { source, clock, logger } = components
  const app = Fastify({
    logger: false,
    bodyLimit: 1_024,
    // Open event streams would otherwise hold close() until the browser leaves.
    forceCloseConnections: true,
    // maxParamLength: longer than any valid parameter, so the schemas, not the router, refuse (400).
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 512 },
  }).withTypeProvider<TypeBoxTypeProvider>()

  const routes: { method: string; url: string; schema: Record<string, unknown> }[] = []
  app.addHook('onRoute', (route) => {
    if (route.schema)
      routes.push({
        method: String(route.method),
        url: route.url,
        schema: route.schema as Record<string, unknown>,
      })
  })

  const hostnames = init.allowedHostnames === undefined ? undefined : new Set(init.allowedHostnames)
  app.addHook('onRequest', async (req) => {
    if (hostnames !== undefined) {
      const host = (req.headers.host ?? '').toLowerCase().replace(/:\d{1,5}$/, '')
      if (!hostnames.has(host))
        throw new InvalidArgumentError(`this server does not answer for host "${host.slice(0, 100)}"`, {
          hint: `Use http://${[...hostnames][0]}`,
        })
    }
    if (req.url.length > MAX_URL_LENGTH)
      throw new ApiError('API_ROUTE_NOT_FOUND', `the URL is longer than ${MAX_URL_LENGTH} characters`)
  })
  app.addHook('onSend', async (_req, reply) => {
    reply.header('x-content-type-options', 'nosniff')
  })

  app.setErrorHandler((err, req, reply) => {
    const e = err as Error & { validation?: unknown; statusCode?: number; code?: string }
    if (e.validation !== undefined) {
      return reply.status(400).send({ error: { code: 'INVALID_ARGUMENT', message: e.message } })
    }
    if (isMeshworkError(err)) {
      const status = statusOf(err.code)
      if (status >= 500) logger.warn({ err, url: req.url }, 'failed to answer an API request')
      return reply.status(status).send({
        error: {
          code: err.code,
          message: err.message,
          ...(err.hint === undefined ? {} : { hint: err.hint }),
        },
      })
    }
    // fastify's own 4xx (a malformed URL, a body where none is taken): the caller's mistake.
    if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
      return reply.status(400).send({ error: { code: 'INVALID_ARGUMENT', message: e.message } })
    }
    logger.warn({ err, url: req.url }, 'failed to answer an API request')
    return reply.status(500).send({ error: { code: 'INTERNAL', message: 'unexpected error' } })
  })

  const notFound = (url: string) =>
    ({
      error: { code: 'API_ROUTE_NOT_FOUND', message: `no route ${url.split('?')[0]?.slice(0, 200)}` },
    }) as const
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '/'
    const files = init.staticFiles
    if (files !== undefined && (req.method === 'GET' || req.method === 'HEAD') && !path.startsWith('/api/')) {
      // The dashboard routes in the fragment (#/nodes/ID), so a path is a file or nothing.
      const file = files.get(path === '/' ? '/index.html' : path)
      if (file !== undefined) return sendFile(reply, file)
    }
    return reply.status(404).send(notFound(req.url))
  })

  app.get(
    '/api/network',
    {
      schema: {
        summary: 'The network: chain, contracts, epoch, nodes online, verifiers',
        response: { 200: NetworkView, ...errorResponses },
      },
    },
    () => source.network(),
  )
  app.get(
    '/api/nodes',
    {
      schema: {
        summary: 'Every registered node: place, stake, online, score and earnings',
        response: { 200: Type.Object({ nodes: Type.Array(NodeView) }), ...errorResponses },
      },
    },
    async () => ({ nodes: await source.nodes() }),
  )
  app.get(
    '/api/nodes/:peerId',
    {
      schema: {
        summary: 'One node: its score per epoch and why, earnings, claims and an estimate',
        params: Type.Object({ peerId: PeerIdParam }),
        response: { 200: NodeDetailView, ...errorResponses },
      },
    },
    async (req) => {
      const node = await source.node(req.params.peerId)
      if (node === undefined)
        throw new ApiError('API_NODE_NOT_FOUND', `no registered node ${req.params.peerId}`)
      return node
    },
  )
  app.get(
    '/api/epochs',
    {
      schema: {
        summary: 'Posted epochs, newest first: root, bundle, emitted, paid, claimed',
        querystring: LimitQuery,
        response: { 200: EpochListView, ...errorResponses },
      },
    },
    (req) => source.epochs(req.query.limit ?? DEFAULT_LIMIT),
  )
  app.get(
    '/api/epochs/:n',
    {
      schema: {
        summary: 'One posted epoch recomputed from its bundle: pools and every node’s score and reward',
        params: Type.Object({ n: EpochParam }),
        response: { 200: EpochDetailView, ...errorResponses },
      },
    },
    async (req) => {
      const epoch = await source.epoch(Number(req.params.n))
      if (epoch === undefined)
        throw new ApiError('API_EPOCH_NOT_FOUND', `epoch ${req.params.n} has no posted root`)
      return epoch
    },
  )
  app.get(
    '/api/jobs',
    {
      schema: {
        summary: 'Recent jobs, newest first: provider, tier, latency, how the result was checked',
        querystring: LimitQuery,
        response: { 200: JobListView, ...errorResponses },
      },
    },
    async (req) => ({ jobs: await source.jobs(req.query.limit ?? DEFAULT_LIMIT) }),
  )

  app.get(
    '/api/sensors/latest',
    {
      schema: {
        summary:
          'The latest checked sensor readings, nearest first: value, quality flag, the verifiers’ newest score',
        querystring: SensorQuery,
        response: { 200: SensorListView, ...errorResponses },
      },
    },
    async (req) => {
      if (source.sensors === undefined)
        throw new ApiError('API_ROUTE_NOT_FOUND', 'this API serves no sensor data')
      const q = req.query
      if (q.radius !== undefined && q.near === undefined)
        throw new InvalidArgumentError('radius needs near=LAT,LON', {
          hint: 'For example ?near=52.52,13.40&radius=25',
        })
      let near: { lat: number; lon: number } | undefined
      if (q.near !== undefined) {
        const [lat, lon] = q.near.split(',').map(Number) as [number, number]
        if (Math.abs(lat) > 90 || Math.abs(lon) > 180)
          throw new InvalidArgumentError(
            'near must be a latitude in [-90, 90] and a longitude in [-180, 180]',
          )
        near = { lat, lon }
      }
      const readings = await source.sensors({
        ...(near === undefined ? {} : { near }),
        ...(q.radius === undefined ? {} : { radiusKm: q.radius }),
        ...(q.kind === undefined ? {} : { kind: q.kind }),
        limit: q.limit ?? DEFAULT_LIMIT,
      })
      return { readings }
    },
  )

  app.get(
    '/api/governance',
    {
      schema: {
        summary:
          'Governance: the parameter set in force, every parameter version and the epoch it applies from, every proposal with its state, votes and diff',
        response: { 200: GovernanceView, ...errorResponses },
      },
    },
    async () => {
      if (source.governance === undefined)
        throw new ApiError('API_ROUTE_NOT_FOUND', 'this API serves no governance data')
      return source.governance()
    },
  )
  app.get(
    '/api/governance/proposals/:id',
    {
      schema: {
        summary: 'One proposal: its state, votes, quorum and the parameters it would change',
        params: Type.Object({ id: ProposalIdParam }),
        response: { 200: ProposalView, ...errorResponses },
      },
    },
    async (req) => {
      if (source.proposal === undefined)
        throw new ApiError('API_ROUTE_NOT_FOUND', 'this API serves no governance data')
      const id = BigInt(req.params.id)
      if (id >= 2n ** 256n) throw new InvalidArgumentError('a proposal id is a uint256')
      const proposal = await source.proposal(id)
      if (proposal === undefined)
        throw new ApiError('API_PROPOSAL_NOT_FOUND', `there is no proposal ${req.params.id}`, {
          hint: 'List proposals with GET /api/governance',
        })
      return proposal
    },
  )

  // Server-sent events: one `event: TYPE` / `data: JSON` record per change.
  const streams = new Set<FastifyReply>()
  const maxStreams = init.maxStreams ?? 64
  const heartbeatMs = init.heartbeatMs ?? 15_000
  app.get(
    '/api/events',
    {
      schema: {
        summary: 'Live changes as server-sent events: network, node, epoch, job, sensor, governance',
        response: { 503: ErrorBody },
      },
    },
    (req, reply) => {
      if (streams.size >= maxStreams)
        throw new ApiError('API_TOO_MANY_STREAMS', `${maxStreams} event streams are open already`, {
          hint: 'Close another dashboard tab, or try again later',
        })
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        connection: 'keep-alive',
      })
      res.write('retry: 3000\n\n')
      streams.add(reply)
      const write = (event: ApiEvent) => {
        // A client that does not read is dropped rather than buffered without bound.
        if (res.writableLength > 1_048_576) {
          res.destroy()
          return
        }
        res.write(`event: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`)
      }
      const unsubscribe = source.subscribe(write)
      let timer = clock.setTimer(heartbeatMs, function beat() {
        res.write(': heartbeat\n\n')
        timer = clock.setTimer(heartbeatMs, beat)
      })
      const done = () => {
        unsubscribe()
        timer.cancel()
        streams.delete(reply)
      }
      req.raw.once('close', done)
      res.once('close', done)
    },
  )
  app.addHook('onClose', async () => {
    for (const s of streams) s.raw.end()
  })

  app.get('/api/openapi.json', () => openApiDocument(routes))
  return app
}

function sendFile(reply: FastifyReply, file: StaticFile) {
  return reply
    .header('content-type', file.contentType)
    .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
    .header(
      'content-security-policy',
      "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'",
    )
    .send(file.body)
}

/** The OpenAPI 3.1 document of the routes registered with a schema (JSON Schema is its dialect). */
function openApiDocument(
  routes: readonly { method: string; url: string; schema: Record<string, unknown> }[],
) {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}')
    const s = r.schema as {
      summary?: string
      params?: { properties?: Record<string, unknown> }
      querystring?: { properties?: Record<string, unknown> }
      response?: Record<string, unknown>
    }
    const parameters = [
      ...Object.entries(s.params?.properties ?? {}).map(([name, schema]) => ({
        name,
        in: 'path',
        required: true,
        schema,
      })),
      ...Object.entries(s.querystring?.properties ?? {}).map(([name, schema]) => ({
        name,
        in: 'query',
        required: false,
        schema,
      })),
    ]
    const responses: Record<string, unknown> = {}
    for (const [status, schema] of Object.entries(s.response ?? {}))
      responses[status] = {
        description: status === '200' ? 'OK' : 'error',
        content: { 'application/json': { schema } },
      }
    if (r.url === '/api/events')
      responses['200'] = {
        description: 'OK',
        content: { 'text/event-stream': { schema: { type: 'string' } } },
      }
    for (const method of r.method.split(',').map((m) => m.toLowerCase())) {
      if (method === 'head') continue
      paths[path] = {
        ...paths[path],
        [method]: { summary: s.summary ?? '', ...(parameters.length ? { parameters } : {}), responses },
      }
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Meshwork API', version: VERSION },
    paths,
  }
}
