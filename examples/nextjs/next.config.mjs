import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

export default {
  // The signed-in pages are dynamic (they read the request through
  // auth()), and the client router cache keeps no dynamic page
  // (staleTimes.dynamic 0, the default, written out so that nobody raises
  // it without reading why): a page rendered before a revocation must not be
  // shown after it.
  experimental: { staleTimes: { dynamic: 0 } },
  // @tegata/node is linked from ../../js: let the bundler look there, and
  // load it as Node loads it (one module instance, node: built-ins).
  turbopack: { root: repo },
  outputFileTracingRoot: repo,
  serverExternalPackages: ['@tegata/node', 'jose'],
}
