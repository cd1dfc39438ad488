// The one door to the gateway's REST API: bearer token, one refresh (with rotation) when
// the access token has expired, problem+json errors as ApiError, uploads with progress
// and file downloads. Every area's client module (identity.js, orders.js, ...) uses it.
import { session } from '../auth/session'

export const API_BASE = '/api/v1'

export class ApiError extends Error {
  constructor(status, problem = {}) {
    super(problem.detail || problem.title || `HTTP ${status}`)
    this.status = status
    this.detail = problem.detail || ''
    this.reason = problem.reason || ''
    this.errors = Array.isArray(problem.errors) ? problem.errors : []
    this.requestId = problem.request_id || ''
  }
}

export function queryString(query = {}) {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== '') params.append(key, String(item))
    }
  }
  const text = params.toString()
  return text ? `?${text}` : ''
}

async function problemOf(response) {
  const type = response.headers.get('content-type') || ''
  if (type.includes('json')) {
    try {
      return await response.json()
    } catch {
      return {}
    }
  }
  return { detail: response.statusText }
}

// Sends once; on 401 with a refresh token, refreshes (one refresh for all concurrent
// callers) and sends again. A failed refresh ends the session.
async function withSession(send) {
  let response = await send(session.accessToken)
  if (response.status === 401 && session.refreshToken) {
    const refreshed = await session.refresh()
    if (refreshed) response = await send(session.accessToken)
    else session.expire()
  } else if (response.status === 401 && session.accessToken) {
    session.expire()
  }
  return response
}

function authHeaders(token) {
  return token ? { Authorization: `Bearer ${token}` } : {}
}

export async function request(method, path, { query, body, signal } = {}) {
  const response = await withSession((token) =>
    fetch(API_BASE + path + queryString(query), {
      method,
      signal,
      headers: {
        Accept: 'application/json',
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...authHeaders(token),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    }),
  )
  if (!response.ok) throw new ApiError(response.status, await problemOf(response))
  if (response.status === 204) return null
  return response.json()
}

export const get = (path, query, options = {}) => request('GET', path, { ...options, query })
export const post = (path, body = {}, query) => request('POST', path, { body, query })
export const put = (path, body = {}) => request('PUT', path, { body })
export const patch = (path, body = {}) => request('PATCH', path, { body })

// A browser form upload (field "file") with progress events: onProgress(0..100).
export function upload(path, file, { query, onProgress } = {}) {
  const send = (token) =>
    new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest()
      xhr.open('POST', API_BASE + path + queryString(query))
      for (const [key, value] of Object.entries(authHeaders(token))) xhr.setRequestHeader(key, value)
      xhr.setRequestHeader('Accept', 'application/json')
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable && onProgress) onProgress(Math.round((event.loaded / event.total) * 100))
      }
      xhr.onload = () => {
        if (onProgress) onProgress(100)
        resolve(
          new Response(xhr.responseText, {
            status: xhr.status,
            headers: { 'content-type': xhr.getResponseHeader('content-type') || '' },
          }),
        )
      }
      xhr.onerror = () => reject(new ApiError(0, { detail: 'network error' }))
      const form = new FormData()
      form.append('file', file, file.name)
      xhr.send(form)
    })
  return withSession(send).then(async (response) => {
    if (!response.ok) throw new ApiError(response.status, await problemOf(response))
    const body = await response.json()
    return response.status === 202 && body.location?.startsWith(`${API_BASE}/import-jobs/`)
      ? importJobResult(body)
      : body
  })
}

// A large import answers 202 with a job (gateway/import_jobs.py): wait for it to end and
// give its result, or throw the problem that refused the file, as a small import would.
async function importJobResult(job) {
  const path = job.location.slice(API_BASE.length)
  while (job.state === 'queued' || job.state === 'running') {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    job = await get(path)
  }
  if (job.state === 'succeeded') return job.result
  const problem = job.problem || { detail: `the import was ${job.state}` }
  throw new ApiError(problem.status || 499, problem)
}

function filenameOf(response, fallback) {
  const disposition = response.headers.get('content-disposition') || ''
  const match = /filename\*=UTF-8''([^;]+)/i.exec(disposition)
  return match ? decodeURIComponent(match[1]) : fallback
}

// Downloads a generated file (XLSX, PDF) and hands it to the browser to save.
export async function download(path, query, fallbackName = 'download') {
  const response = await withSession((token) =>
    fetch(API_BASE + path + queryString(query), { headers: authHeaders(token) }),
  )
  if (!response.ok) throw new ApiError(response.status, await problemOf(response))
  const blob = await response.blob()
  const url = URL.createObjectURL(blob)
  const link = document.createElement('a')
  link.href = url
  link.download = filenameOf(response, fallbackName)
  document.body.appendChild(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
  return link.download
}

// Server-sent events over fetch (EventSource cannot send the bearer token): calls
// onEvent(kind, data) for each event; resolves with the data of the last one when the
// server ends the stream (or the signal aborts it).
export async function events(path, onEvent, { signal } = {}) {
  const response = await withSession((token) =>
    fetch(API_BASE + path, { signal, headers: { Accept: 'text/event-stream', ...authHeaders(token) } }),
  )
  if (!response.ok) throw new ApiError(response.status, await problemOf(response))
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  let last = null
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return last
    buffer += value
    let end
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const kind = /^event: ?(.*)$/m.exec(block)?.[1] || 'message'
      const data = block.split('\n').filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trimStart()).join('\n')
      if (!data) continue
      last = JSON.parse(data)
      onEvent(kind, last)
    }
  }
}
