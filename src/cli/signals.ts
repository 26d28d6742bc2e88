/**
 * Resolves on the first SIGINT or SIGTERM (Ctrl-C), for long-running commands, with the signal's
 * name. A process started with an IPC channel (a devnet member) also stops when that channel closes:
 * its parent is gone, even if it was killed with SIGKILL and could not stop it.
 */
export function waitForShutdown(): Promise<NodeJS.Signals | 'parent gone'> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals | 'parent gone') => {
      process.off('SIGINT', on)
      process.off('SIGTERM', on)
      process.off('disconnect', onDisconnect)
      resolve(signal)
    }
    const onDisconnect = () => on('parent gone')
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
    if (process.connected) {
      process.on('disconnect', onDisconnect)
      // The channel alone must not keep a stopped process alive.
      process.channel?.unref()
    }
  })
}
