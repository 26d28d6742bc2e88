#!/usr/bin/env node
// The `meshwork` command. The polyfill loads first, before anything that may import libp2p.
import '../dist/core/polyfill.js'
import { main } from '../dist/cli/main.js'

// Held until the command settles: a command whose last wait rests only on unref'd timers (libp2p
// closing its connections under AbortSignal.timeout deadlines) must not end the process early with
// Node's "unfinished top-level await" (exit 13) while it is still finishing.
const keepAlive = setInterval(() => {}, 2 ** 30)
try {
  process.exitCode = await main(process.argv.slice(2))
} finally {
  clearInterval(keepAlive)
}
