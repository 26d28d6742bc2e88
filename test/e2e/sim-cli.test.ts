import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'mw-sim-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('meshwork sim run (built CLI)', () => {
  it('prints the same JSON for the same seed and writes an offline HTML report', async () => {
    const args = [
      '--json',
      'sim',
      'run',
      'colluding-verifiers',
      '--nodes',
      '8',
      '--epochs',
      '2',
      '--seed',
      '9',
    ]
    const report = join(dir, 'report.html')
    const [a, b] = [await runCli([...args, '--report', report]), await runCli(args)]
    expect(a.code).toBe(0)
    expect(b.code).toBe(0)
    expect(a.stdout).toBe(b.stdout)
    const result = JSON.parse(a.stdout)
    expect(result.attack.forgedRoots).toEqual({ attempted: 2, accepted: 0 })
    expect(result.attack.profit).toBeLessThan(0)
    const html = readFileSync(report, 'utf8')
    expect(html).toMatch(/^<!doctype html>/)
    expect(html.match(/<svg /g)?.length).toBe(3)
    // Self-contained: nothing is fetched (no scripts, stylesheets or images from elsewhere).
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\//)
  }, 120_000)

  it('shows progress on stderr and a summary on stdout without --json', async () => {
    const r = await runCli(['sim', 'run', 'lazy', '--nodes', '10', '--epochs', '2'])
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/\[2\/2\] epoch 1 settled \(honest twin run\)/)
    expect(r.stdout).toMatch(/attacker profit: -[\d.]+ MESH .*the attack does not pay/)
  }, 120_000)
})
