import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliProcess, runCli, startCli } from '../helpers/cli.js'
import { syntheticNetworkFile } from '../helpers/synthetic-network.js'

/**
 * mDNS discovery between real `meshwork node start` processes. mDNS is multicast, which the host's
 * loopback does not carry and which tests must not send onto a real network: the nodes run in a
 * network namespace of the test's own (`unshare -n`), whose loopback is switched to multicast.
 * Needs `unshare`, `nsenter` and `ip`, and the right to create a namespace (root, as in CI);
 * elsewhere the test is skipped and says why.
 */

const canNamespace =
  spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo multicast on'], { stdio: 'ignore' }).status === 0 &&
  spawnSync('nsenter', ['--version'], { stdio: 'ignore' }).status === 0

interface Status {
  running: boolean
  peerId: string
  live?: { peers: string[]; ads: { peerId: string }[] }
}

describe.skipIf(!canNamespace)(
  'mDNS discovery (real node processes in a network namespace of their own)',
  () => {
    const cwd = mkdtempSync(join(tmpdir(), 'mw-node-mdns-'))
    let holder: ChildProcess
    let wrap: string[]
    const nodes: CliProcess[] = []

    beforeAll(async () => {
      // The namespace lives as long as this process: loopback up, multicast on, routed to loopback.
      holder = spawn(
        'unshare',
        [
          '-n',
          'sh',
          '-c',
          'ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && echo ready && exec sleep 300',
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      )
      await new Promise<void>((resolve, reject) => {
        holder.stdout?.once('data', () => resolve())
        holder.once('exit', (code) => reject(new Error(`the namespace holder exited (${code})`)))
      })
      wrap = ['nsenter', '-t', String(holder.pid), '-n']
      writeFileSync(
        join(cwd, 'network.json'),
        JSON.stringify(
          syntheticNetworkFile({ name: 'mdns-test', registry: `0x${'a2'.padStart(40, '0')}`, bootstrap: [] }),
        ),
      )
    })

    afterAll(async () => {
      await Promise.all(nodes.map((n) => n.stop('SIGKILL')))
      holder?.kill('SIGKILL')
      rmSync(cwd, { recursive: true, force: true })
    })

    const init = async (name: string, apiPort: number, mdns: boolean) => {
      const args = ['--json', 'node', 'init', '--dir', name, '--lat', '52.52', '--lon', '13.405']
      args.push('--network', 'network.json', '--api-listen', `127.0.0.1:${apiPort}`)
      args.push('--listen', '/ip4/127.0.0.1/tcp/0')
      if (mdns) args.push('--mdns')
      const r = await runCli(args, { cwd })
      expect(r.code, r.stderr).toBe(0)
      return (JSON.parse(r.stdout) as { peerId: string }).peerId
    }
    const status = async (dir: string): Promise<Status> => {
      const r = await runCli(['--json', 'node', 'status', '--dir', dir], { cwd, wrap })
      // Once seen failing with an empty stdout under load (a CI-sized machine shared with
      // benchmarks): the exit code and stderr say why next time.
      expect(r.code, `node status --dir ${dir}: ${r.stderr}`).toBe(0)
      return JSON.parse(r.stdout) as Status
    }

    it('two nodes with --mdns and no bootstrap find each other and trade ads; a node without it stays alone', async ({
      annotate,
    }) => {
      // Ports are the namespace's own: nothing else listens there.
      const a = await init('a', 9464, true)
      const b = await init('b', 9465, true)
      const c = await init('c', 9466, false)
      const t0 = Date.now()
      for (const dir of ['a', 'b', 'c']) {
        const node = startCli(['node', 'start', '--dir', dir], { cwd, wrap })
        nodes.push(node)
        await node.waitFor(/running/, 30_000)
      }

      const adsOf = (s: Status) => (s.live?.ads ?? []).map((ad) => ad.peerId)
      const deadline = Date.now() + 20_000
      let [sa, sb] = [await status('a'), await status('b')]
      while (Date.now() < deadline && !(adsOf(sa).includes(b) && adsOf(sb).includes(a))) {
        await new Promise((r) => setTimeout(r, 250))
        ;[sa, sb] = [await status('a'), await status('b')]
      }
      await annotate(`a and b hold each other's ads ${Date.now() - t0} ms after the first start`)
      expect(adsOf(sa)).toEqual([b])
      expect(adsOf(sb)).toEqual([a])
      expect(sa.live?.peers).toEqual([b])

      // c has no bootstrap peers and does not run mDNS: nobody finds it, it finds nobody.
      const sc = await status('c')
      expect(sc.running).toBe(true)
      expect(sc.live?.peers).toEqual([])
      expect(adsOf(sc)).toEqual([])
      expect(adsOf(await status('a'))).not.toContain(c)
    })
  },
)
