// Routes from navigation.js under their layout; a guard sends the signed-out to the login
// page, everyone else to pages their roles (and the gateway's API) allow.
import { createRouter, createWebHistory } from 'vue-router'
import { session } from './auth/session'
import { loadCapabilities } from './api/capabilities'
import { allowed, consolePages, dealerPages, homeFor } from './navigation'

const routes = [
  { path: '/login', name: 'login', component: () => import('./pages/Login.vue'), meta: { public: true } },
  { path: '/m', component: () => import('./layouts/DealerLayout.vue'), children: dealerPages, redirect: { name: 'm-home' } },
  { path: '/console', component: () => import('./layouts/ConsoleLayout.vue'), children: consolePages, redirect: { name: 'c-dashboard' } },
  { path: '/', name: 'root', redirect: () => homeFor() },
  { path: '/:rest(.*)*', name: 'not-found', component: () => import('./pages/NotFound.vue'), meta: { public: true } },
]

export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  if (!session.signedIn) return { name: 'login', query: to.fullPath !== '/' ? { next: to.fullPath } : {} }
  await loadCapabilities()
  if (to.meta.roles && !allowed(to)) return homeFor()
  return true
})

session.onExpired(() => {
  const current = router.currentRoute.value
  if (!current.meta.public) router.replace({ name: 'login', query: { next: current.fullPath, expired: '1' } })
})
