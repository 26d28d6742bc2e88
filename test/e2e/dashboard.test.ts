import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium } from 'playwright-core'
import { afterAll, describe, expect, it } from 'vitest'
import { type CliProcess, startCli } from '../helpers/cli.js'

/** Debian's Chromium, as STACK.md launches it (a fresh profile per run). */
const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
/** Where the screenshot lands (git-ignored). */
const RESULTS = new URL('../../test-results/', import.meta.url).pathname

interface ApiNode {
  peerId: string
  label?: string
  online: boolean
}

describe('the dashboard in real Chromium against a real devnet', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'mw-dashboard-'))
  const profile = mkdtempSync(join(tmpdir(), 'mw-chromium-'))
  let devnet: CliProcess | undefined
  let browser: BrowserContext | undefined
  afterAll(async () => {
    await browser?.close()
    await devnet?.stop('SIGINT')
    rmSync(cwd, { recursive: true, force: true })
    rmSync(profile, { recursive: true, force: true })
  })

  it('shows every node on the map and in the table, a new epoch after one closes, a stopped node offline, and a node page that explains its score', async ({
    annotate,
  }) => {
    devnet = startCli(
      [
        'devnet',
        '--port',
        '0',
        '--chain-port',
        '0',
        '--dir',
        'net',
        '--nodes',
        '3',
        '--verifiers',
        '2',
        '--epoch-seconds',
        '5',
      ],
      { cwd },
    )
    const url = (
      await devnet.waitFor(/Meshwork devnet ready: (http:\/\/127\.0\.0\.1:\d+)/, 90_000)
    )[1] as string
    const api = async <T>(path: string) => (await (await fetch(`${url}${path}`)).json()) as T
    const { nodes } = await api<{ nodes: ApiNode[] }>('/api/nodes')
    expect(nodes).toHaveLength(3)

    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 1100 },
    })
    const page = browser.pages()[0] ?? (await browser.newPage())
    const problems: string[] = []
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`)
    })
    page.on('pageerror', (e) => problems.push(`page: ${e.message}`))
    // Nothing is fetched from anywhere but the devnet.
    page.on('request', (r) => {
      if (!r.url().startsWith(url) && !r.url().startsWith('data:')) problems.push(`fetched ${r.url()}`)
    })
    await page.goto(url)

    // Every node on the map and in the table.
    for (const n of nodes) {
      await page.locator(`.map .marker.online[data-peer-id="${n.peerId}"]`).waitFor({ timeout: 15_000 })
      await page.locator(`table.nodes tr[data-peer-id="${n.peerId}"]`).waitFor({ timeout: 15_000 })
    }
    expect(await page.locator('.map .marker').count()).toBe(3)
    expect(await page.locator('table.nodes tbody tr').count()).toBe(3)
    await expect
      .poll(() => page.locator('[data-testid="nodes-online"]').textContent(), { timeout: 15_000 })
      .toMatch(/3\s*\/\s*3/)

    // A new epoch appears on the timeline after one closes, without reloading (server-sent events).
    await page.locator('.timeline li[data-epoch]').first().waitFor({ timeout: 40_000 })
    const first = Number(await page.locator('.timeline li[data-epoch]').first().getAttribute('data-epoch'))
    await page.locator(`.timeline li[data-epoch="${first + 1}"]`).waitFor({ timeout: 30_000 })
    await page.locator(`.chart .epoch-bar[data-epoch="${first + 1}"]`).waitFor({ timeout: 5_000 })
    await annotate(`epoch ${first + 1} appeared after epoch ${first}`)

    // The demo builder's jobs show on the latency chart.
    await page.locator('.chart circle.job').first().waitFor({ timeout: 30_000 })
    // Every node's weather station: its latest readings in the sensor table and a diamond on the map.
    await expect.poll(() => page.locator('.map .sensor').count(), { timeout: 30_000 }).toBe(3)
    await page.locator('table.sensors tbody tr').first().waitFor({ timeout: 5_000 })
    expect(await page.locator('table.sensors').textContent()).toMatch(/temperature.*°C/)

    // A stopped node shows offline, on the map and in the table.
    const victim = nodes[1] as ApiNode
    const pids = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('meshwork.js node start') && l.includes(join(cwd, 'net', 'nodes', 'node-1')))
      .map((l) => Number(l.trim().split(/\s+/)[0]))
    expect(pids).toHaveLength(1)
    process.kill(pids[0] as number, 'SIGTERM')
    await page
      .locator(`table.nodes tr[data-peer-id="${victim.peerId}"] [data-testid="status"]`, {
        hasText: 'offline',
      })
      .waitFor({ timeout: 20_000 })
    await page.locator(`.map .marker.offline[data-peer-id="${victim.peerId}"]`).waitFor({ timeout: 5_000 })
    await expect.poll(() => page.locator('[data-testid="nodes-online"]').textContent()).toMatch(/2\s*\/\s*3/)

    mkdirSync(RESULTS, { recursive: true })
    await page.screenshot({ path: join(RESULTS, 'dashboard.png'), fullPage: true })

    // A node's page explains its score per verifier, with an estimate.
    const healthy = nodes[0] as ApiNode
    await page.locator(`table.nodes tr[data-peer-id="${healthy.peerId}"] a`).click()
    await page.locator(`.node-page[data-peer-id="${healthy.peerId}"]`).waitFor({ timeout: 10_000 })
    await page
      .locator('.epoch-score li', { hasText: /challenges? from verifier-\d/ })
      .first()
      // The page follows new epochs: the verifiers' first full observation of the node may be one away.
      .waitFor({ timeout: 45_000 })
    expect(await page.locator('[data-testid="estimate"]').textContent()).toMatch(/next epoch/)
    await page.screenshot({ path: join(RESULTS, 'dashboard-node.png'), fullPage: true })

    expect(problems).toEqual([])
    await browser.close()
    browser = undefined
    expect(await devnet.stop('SIGINT')).toBe(0)
  }, 180_000)
})
