// The signed-in session: tokens kept in localStorage, the roles and dealer read from the
// access token's claims, refresh with rotation (one refresh in flight at a time).
import { reactive } from 'vue'

const STORAGE_KEY = 'qudao.session'
export const DEALER_ROLES = ['dealer_admin', 'dealer_sales']
export const HQ_ROLES = ['hq_admin', 'region_manager', 'channel_manager', 'finance', 'customer_service']

function claimsOf(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    const json = decodeURIComponent(
      [...atob(payload)].map((c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''),
    )
    return JSON.parse(json)
  } catch {
    return {}
  }
}

function load() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) || '{}')
  } catch {
    return {}
  }
}

let refreshing = null
const listeners = new Set()

export const session = reactive({
  accessToken: '',
  refreshToken: '',
  user: null,
  claims: {},

  get signedIn() {
    return Boolean(this.accessToken)
  },
  get roles() {
    return this.claims.roles || []
  },
  get dealerId() {
    return this.claims.dealer || ''
  },
  get isDealer() {
    return this.roles.some((role) => DEALER_ROLES.includes(role))
  },
  hasRole(...roles) {
    return roles.some((role) => this.roles.includes(role))
  },

  store(tokens, user) {
    this.accessToken = tokens.access_token
    this.refreshToken = tokens.refresh_token || this.refreshToken
    if (user) this.user = user
    this.claims = claimsOf(this.accessToken)
    localStorage.setItem(
      STORAGE_KEY,
      JSON.stringify({ accessToken: this.accessToken, refreshToken: this.refreshToken, user: this.user }),
    )
  },

  clear() {
    this.accessToken = ''
    this.refreshToken = ''
    this.user = null
    this.claims = {}
    localStorage.removeItem(STORAGE_KEY)
  },

  // The session ended (refresh refused, revoked): forget it and tell the app.
  expire() {
    this.clear()
    for (const listener of listeners) listener()
  },

  onExpired(listener) {
    listeners.add(listener)
  },

  refresh() {
    if (!refreshing) {
      const token = this.refreshToken
      refreshing = fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ refresh_token: token }),
      })
        .then(async (response) => {
          if (!response.ok) return false
          this.store(await response.json())
          return true
        })
        .catch(() => false)
        .finally(() => {
          refreshing = null
        })
    }
    return refreshing
  },
})

const saved = load()
if (saved.accessToken) {
  session.accessToken = saved.accessToken
  session.refreshToken = saved.refreshToken || ''
  session.user = saved.user || null
  session.claims = claimsOf(saved.accessToken)
}
