#!/usr/bin/env node
// The `meshwork` command. The polyfill loads first, before anything that may import libp2p.
import '../dist/core/polyfill.js'
import { main } from '../dist/cli/main.js'

// A command whose last wait rests only on unref'd timers (libp2p closing its connections under
// AbortSignal.timeout deadlines) would end early with Node's "unfinished top-level await" (exit 13)
// while it is still finishing: give such timers up to 30 s of an otherwise empty event loop.
let settled = false
let grace = 0
process.on('beforeExit', () => {
  if (!settled && grace++ < 30) setTimeout(() => {}, 1_000)
})
try {
  process.exitCode = await main(process.argv.slice(2))
} finally {
  settled = true
}
