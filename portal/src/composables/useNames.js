// Names for the ids lists carry (dealers, users), looked up once each and cached for the
// session, so tables show 上海康健医疗器械有限公司 rather than a UUID.
import { reactive } from 'vue'
import { get } from '../api/http'

const cache = reactive({ dealers: {}, users: {} })
const pending = new Set()

function lookup(kind, id, path, pick) {
  if (!id) return ''
  const known = cache[kind][id]
  if (known !== undefined) return known || id.slice(0, 8)
  if (!pending.has(kind + id)) {
    pending.add(kind + id)
    get(path)
      .then((body) => (cache[kind][id] = pick(body)))
      .catch(() => (cache[kind][id] = ''))
  }
  return '…'
}

export const dealerName = (id) => lookup('dealers', id, `/org-units/${id}`, (unit) => unit.name)
export const userName = (id) =>
  lookup('users', id, `/users/${id}`, (user) => user.display_name || user.username)

// "user:<uuid>" subjects as recorded by the services.
export const subjectName = (subject, t) => {
  if (!subject) return '—'
  if (subject === 'system') return t('common.system')
  const [kind, id] = subject.split(':')
  return kind === 'user' ? userName(id) : subject
}

export function rememberDealers(units) {
  for (const unit of units || []) cache.dealers[unit.id] = unit.name
}
