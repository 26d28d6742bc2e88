import { createConnection, createServer, type Server, type Socket } from 'node:net'

/**
 * A TCP relay on 127.0.0.1 that delays every chunk by `delayMs` in each direction, keeping order:
 * a link `2 × delayMs` of round trip longer, over real sockets. (It stands in for `tc qdisc … netem
 * delay` in a network namespace, which needs the kernel's sch_netem module; this machine's kernel
 * has none.)
 */
export async function startDelayRelay(target: { host: string; port: number }, delayMs: number) {
  const sockets = new Set<Socket>()
  const pipe = (from: Socket, to: Socket) => {
    let last = 0
    from.on('data', (chunk) => {
      const due = Math.max(Date.now() + delayMs, last)
      last = due
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk)
      }, due - Date.now())
    })
    from.on('end', () => setTimeout(() => to.end(), Math.max(0, last - Date.now())))
    from.on('error', () => to.destroy())
    from.on('close', () => setTimeout(() => to.destroy(), Math.max(0, last - Date.now()) + 1))
  }
  const server: Server = createServer((client) => {
    const upstream = createConnection(target)
    sockets.add(client)
    sockets.add(upstream)
    client.on('close', () => sockets.delete(client))
    upstream.on('close', () => sockets.delete(upstream))
    pipe(client, upstream)
    pipe(upstream, client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address !== 'object') throw new Error('the relay has no port')
  return {
    port: address.port,
    async stop() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
