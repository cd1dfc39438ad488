// Sign in and out, and who am I.
import { get, post } from './http'
import { session } from '../auth/session'

export async function login(username, password) {
  const response = await post('/auth/login', { username, password })
  session.store(response, response.user)
  return response
}

export async function logout() {
  const refreshToken = session.refreshToken
  session.clear()
  if (refreshToken) await post('/auth/logout', { refresh_token: refreshToken }).catch(() => null)
}

export const me = () => get('/auth/me')
export const changePassword = (body) => post('/auth/password', body)
