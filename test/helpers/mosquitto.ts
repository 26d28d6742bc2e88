import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Where Debian installs the broker (scripts/system-packages.sh installs it for the tests). */
const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p))

/** A free TCP port on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}

/** A running Mosquitto broker on 127.0.0.1 for one test: `url` to connect to, `stop()` ends it. */
export interface Broker {
  url: string
  stop(): Promise<void>
}

/**
 * Starts Debian's Mosquitto on a free loopback port with a config of its own (anonymous clients,
 * no persistence), and waits until it accepts connections.
 *
 * @throws Error naming the fix when the broker is not installed.
 */
export async function startMosquitto(): Promise<Broker> {
  if (MOSQUITTO === undefined)
    throw new Error(
      'mosquitto is not installed: run `bash scripts/system-packages.sh` (apt-get install mosquitto)',
    )
  const dir = mkdtempSync(join(tmpdir(), 'mosquitto-'))
  const port = await freePort()
  const config = join(dir, 'mosquitto.conf')
  writeFileSync(config, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`)
  const child: ChildProcess = spawn(MOSQUITTO, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString()
  })
  const url = `mqtt://127.0.0.1:${port}`
  const deadline = Date.now() + 10_000
  const { connectAsync } = await import('mqtt')
  for (;;) {
    try {
      const probe = await connectAsync(url, { reconnectPeriod: 0, connectTimeout: 1_000 })
      await probe.endAsync()
      break
    } catch (err) {
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL')
        throw new Error(`mosquitto did not start: ${String(err)}\n${log}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  return {
    url,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3_000))])
        if (child.exitCode === null) child.kill('SIGKILL')
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
