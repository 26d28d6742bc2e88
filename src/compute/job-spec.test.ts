import { describe, expect, it } from 'vitest'
import { JOB_LIMIT_DEFAULTS, parseJobSpec } from './job-spec.js'

const spec = (over: Record<string, unknown> = {}) => ({
  v: 1,
  id: 'c0ffee0000000000000000000000beef',
  kind: 'js',
  code: { inline: Buffer.from('(x) => x + 1').toString('base64') },
  input: { inline: Buffer.from('41').toString('base64') },
  deadline: 1_800_000_000_000,
  maxPrice: '1000000',
  ...over,
})

describe('parseJobSpec', () => {
  it('accepts a minimal spec and fills in limits and placement defaults', () => {
    const parsed = parseJobSpec(spec())
    expect(parsed.limits).toEqual(JOB_LIMIT_DEFAULTS)
    expect(parsed.placement).toEqual({ localOnly: false, tier: 'any' })
  })

  it('accepts placement near a cell or a point, with an RTT cap, local-only and a tier', () => {
    expect(
      parseJobSpec(spec({ placement: { near: { cell: '871f1d489ffffff' }, maxRttMs: 20, tier: 'edge' } }))
        .placement,
    ).toEqual({ near: { cell: '871f1d489ffffff' }, maxRttMs: 20, localOnly: false, tier: 'edge' })
    expect(
      parseJobSpec(spec({ placement: { near: { lat: 52.5, lon: 13.4, radiusKm: 50 }, localOnly: true } }))
        .placement.localOnly,
    ).toBe(true)
    expect(parseJobSpec(spec({ input: { sha256: 'ab'.repeat(32) } })).input).toEqual({
      sha256: 'ab'.repeat(32),
    })
  })

  it('refuses a bad spec with the field to fix', () => {
    const refused = (over: Record<string, unknown>) => {
      try {
        parseJobSpec(spec(over))
        return 'accepted'
      } catch (err) {
        const e = err as { code: string; message: string }
        return `${e.code}: ${e.message}`
      }
    }
    expect(refused({ v: 2 })).toMatch(/^JOB_SPEC_INVALID: job spec v:/)
    expect(refused({ kind: 'python' })).toMatch(/job spec kind:/)
    expect(refused({ id: 'short' })).toMatch(/job spec id: 32 hex digits/)
    expect(refused({ limits: { timeMs: 3_600_000 } })).toMatch(/job spec limits\.timeMs:/)
    expect(refused({ limits: { memoryMb: 0 } })).toMatch(/job spec limits\.memoryMb:/)
    expect(refused({ maxPrice: '-1' })).toMatch(/job spec maxPrice:/)
    expect(refused({ code: { inline: 'not base64!' } })).toMatch(/job spec code/)
    expect(refused({ placement: { near: { cell: 'nowhere' } } })).toMatch(/job spec placement\.near/)
    expect(refused({ placement: { tier: 'moon' } })).toMatch(/job spec placement\.tier:/)
    expect(refused({ surprise: true })).toMatch(/JOB_SPEC_INVALID/)
    expect(refused({})).toBe('accepted')
  })
})
