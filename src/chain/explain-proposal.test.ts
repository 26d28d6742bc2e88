import { describe, expect, it } from 'vitest'
import { explainMakersChange } from './explain-proposal.js'

describe('explainMakersChange', () => {
  it('says which makers a new list approves and revokes, and how many it leaves', () => {
    expect(explainMakersChange(['A', 'B'], ['B', 'C'])).toBe(
      'approves maker C; revokes maker A (2 approved after it)',
    )
    expect(explainMakersChange([], ['A', 'B'])).toBe('approves makers A, B (2 approved after it)')
    expect(explainMakersChange(['A', 'B'], [])).toBe('revokes makers A, B (0 approved after it)')
    expect(explainMakersChange(['A'], ['A'])).toBe('keeps the same 1 maker')
  })

  it('names the whole list when the one it replaces is not known', () => {
    expect(explainMakersChange(undefined, ['A', 'B'])).toBe('approves exactly makers A, B')
    expect(explainMakersChange(undefined, [])).toBe('approves no maker at all')
  })
})
