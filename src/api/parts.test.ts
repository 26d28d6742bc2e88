import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { systemClock } from '../core/clock.js'
import { isMeshworkError } from '../core/errors.js'
import { createLogger } from '../core/logger.js'
import { HealthProber } from './health-prober.js'
import { JobLog } from './job-log.js'
import { explainUptime } from './network-data-source.js'
import type { JobView } from './schemas.js'
import { loadStaticFiles } from './static-files.js'

const logger = createLogger({ level: 'silent' })
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mw-api-parts-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

describe('loadStaticFiles', () => {
  it('loads a built dashboard by URL path, leaving out unknown types and links outside it', () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'assets'))
    writeFileSync(join(dir, 'index.html'), '<!doctype html>')
    writeFileSync(join(dir, 'assets', 'app-1a2b.js'), 'export {}')
    writeFileSync(join(dir, 'notes.exe'), 'MZ')
    const outside = tempDir()
    writeFileSync(join(outside, 'secret.txt'), 'secret')
    symlinkSync(join(outside, 'secret.txt'), join(dir, 'secret.txt'))
    const files = loadStaticFiles(dir)
    expect([...files.keys()].sort()).toEqual(['/assets/app-1a2b.js', '/index.html'])
    expect(files.get('/assets/app-1a2b.js')).toMatchObject({ immutable: true, contentType: /javascript/ })
    expect(files.get('/index.html')?.immutable).toBe(false)
  })

  it('refuses a directory without index.html, with the fix in the hint', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'app.js'), '')
    try {
      loadStaticFiles(dir)
      expect.unreachable()
    } catch (err) {
      expect(isMeshworkError(err, 'INVALID_ARGUMENT')).toBe(true)
      expect((err as { hint: string }).hint).toMatch(/npm run build/)
    }
  })
})

describe('HealthProber', () => {
  it('marks a target online while its /healthz answers 200, and offline once it stops, telling listeners once per change', async () => {
    let healthy = true
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' && healthy ? 200 : 503).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    cleanups.push(() => new Promise((resolve) => server.close(resolve)))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const prober = new HealthProber(
      { timeoutMs: 1_000 },
      {
        targets: () =>
          new Map([
            ['a', url],
            ['b', 'http://127.0.0.1:1'],
          ]),
        clock: systemClock,
        logger,
      },
    )
    const changes: string[] = []
    prober.onChange((id, h) => changes.push(`${id}:${h.online}`))
    expect(prober.health('a')).toEqual({ online: false, lastSeen: null })
    await prober.probe()
    expect(prober.health('a').online).toBe(true)
    const seen = prober.health('a').lastSeen
    expect(seen).not.toBeNull()
    expect(prober.health('b')).toEqual({ online: false, lastSeen: null })
    await prober.probe()
    healthy = false
    await prober.probe()
    expect(prober.health('a')).toEqual({ online: false, lastSeen: expect.any(Number) })
    // The first round's two answers come in either order.
    expect(changes.slice(0, 2).sort()).toEqual(['a:true', 'b:false'])
    expect(changes.slice(2)).toEqual(['a:false'])
  })
})

describe('JobLog', () => {
  const job = (i: number): JobView => ({
    id: `j${i}`,
    kind: 'js',
    at: i,
    ok: true,
    provider: 'p',
    tier: 'edge',
    latencyMs: i,
    verification: 'signed',
    price: '1',
  })

  it('keeps the newest jobs up to its capacity, lists them newest first, and tells subscribers', () => {
    const log = new JobLog({ capacity: 3 })
    const heard: string[] = []
    const off = log.subscribe((j) => heard.push(j.id))
    for (let i = 1; i <= 5; i++) log.record(job(i))
    off()
    log.record(job(6))
    expect(log.list(10).map((j) => j.id)).toEqual(['j6', 'j5', 'j4'])
    expect(log.list(1).map((j) => j.id)).toEqual(['j6'])
    expect(heard).toEqual(['j1', 'j2', 'j3', 'j4', 'j5'])
  })
})

describe('explainUptime', () => {
  it('says what each verifier saw, the median against the threshold, and vetting', () => {
    const lines = explainUptime(
      {
        scorePpm: 200_000,
        eligible: false,
        vetting: true,
        verifiers: [
          { verifier: 'V1', challenges: 40, answered: 37 },
          { verifier: 'V2', challenges: 1, answered: 1 },
          { verifier: 'V3xxxxxxxxxxxxxxxx', challenges: 0, answered: 0 },
        ],
      },
      250_000,
      (id) => (id === 'V1' ? 'verifier-1' : id === 'V2' ? 'verifier-2' : undefined),
    )
    expect(lines).toEqual([
      'Missed 3 of 40 challenges from verifier-1.',
      'Answered the one challenge from verifier-2.',
      'verifier V3xxxxxxxxxx… sent it no challenge.',
      'Its score, the median across verifiers, is 20.0%: below the 25.0% threshold, so no uptime reward.',
      'It is new and being vetted: it earns a part of the full weight until it has a record.',
    ])
    expect(explainUptime({ scorePpm: 0, eligible: false, vetting: false, verifiers: [] }, 250_000)[0]).toBe(
      'No verifier observed it this epoch.',
    )
  })

  it('says whether certified hardware places the node, and what of its stake counts', () => {
    const seen = { scorePpm: 1_000_000, eligible: true, vetting: false, verifiers: [] }
    expect(explainUptime({ ...seen, hardware: null }, 250_000, undefined, 5_000).at(-1)).toBe(
      'No certified hardware places it: 50% of its stake counts, and the capped rest only with a device of an approved maker in its cell.',
    )
    const placed = explainUptime(
      {
        ...seen,
        hardware: { device: '12D3KooWDeviceXYZ', maker: '12D3KooWMakerABC' },
        certifiedStake: 10_000n * 10n ** 18n,
      },
      250_000,
      undefined,
      5_000,
    )
    expect(placed.at(-1)).toBe(
      'Its certified station (device 12D3KooWDevi…, maker 12D3KooWMake…) places it in its cell: 50% of its stake counts uncapped and the rest capped, 10,000 MESH of it.',
    )
    // A set without certified hardware says nothing about it.
    expect(explainUptime(seen, 250_000).filter((line) => line.includes('certified'))).toEqual([])
  })
})
