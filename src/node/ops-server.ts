import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import { InvalidArgumentError } from '../core/errors.js'

/** A response of an extra ops route. */
export interface OpsResponse {
  status: number
  contentType: string
  body: string | Uint8Array
}

/** A running ops server. */
export interface OpsServer {
  readonly url: string
  close(): Promise<void>
}

/**
 * Serves a node's operations endpoints on a local port: `GET /metrics` (Prometheus), `GET /healthz`
 * (200 while healthy), `GET /status` (JSON for `meshwork node status`) and any `routes` (a
 * verifier's bundles). Read-only; anything else is 404 or 405.
 */
export async function startOpsServer(init: {
  listen: string
  registry: Registry
  status: () => unknown
  healthy?: () => boolean
  /** More read-only routes: a response for a path, or undefined for 404. */
  routes?: (path: string, query: URLSearchParams) => OpsResponse | undefined
}): Promise<OpsServer> {
  const at = init.listen.lastIndexOf(':')
  const host = init.listen.slice(0, at).replace(/^\[|\]$/g, '')
  const port = Number(init.listen.slice(at + 1))
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end()
      return
    }
    if (path === '/metrics') {
      init.registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': init.registry.contentType }).end(text))
        .catch(() => res.writeHead(500).end())
      return
    }
    if (path === '/healthz') {
      const ok = init.healthy?.() ?? true
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ok }))
      return
    }
    if (path === '/status') {
      const body = JSON.stringify(init.status(), (_k, v) => (typeof v === 'bigint' ? v.toString() : v))
      res.writeHead(200, { 'content-type': 'application/json' }).end(body)
      return
    }
    let extra: OpsResponse | undefined
    try {
      extra = init.routes?.(path ?? '/', new URLSearchParams((req.url ?? '').split('?')[1] ?? ''))
    } catch {
      res.writeHead(500).end()
      return
    }
    if (extra !== undefined) {
      res.writeHead(extra.status, { 'content-type': extra.contentType }).end(extra.body)
      return
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new InvalidArgumentError(`the ops port ${init.listen} is already in use`, {
              hint: 'Set [api] listen in config.toml (or MESHWORK_API__LISTEN) to a free port',
            })
          : err,
      ),
    )
    server.listen(port, host, () => resolve())
  })
  const address = server.address() as AddressInfo
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
