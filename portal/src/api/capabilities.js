// Which API paths the gateway serves, read once from /openapi.json: pages whose API is
// still being built (flow, rebates) appear in the menus the day their routes land.
import { reactive } from 'vue'

export const capabilities = reactive({ loaded: false, paths: new Set() })

export async function loadCapabilities() {
  if (capabilities.loaded) return capabilities
  try {
    const response = await fetch('/openapi.json', { headers: { Accept: 'application/json' } })
    const document = response.ok ? await response.json() : { paths: {} }
    capabilities.paths = new Set(Object.keys(document.paths || {}))
  } catch {
    capabilities.paths = new Set()
  }
  capabilities.loaded = true
  return capabilities
}

export const serves = (path) => !path || capabilities.paths.has(path)
