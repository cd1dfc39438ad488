// Display formats: money from integer minor units (fen) without floats, dates, counts.
export function money(value) {
  if (!value || value.amount_minor === undefined || value.amount_minor === null) return '—'
  const minor = BigInt(value.amount_minor)
  const negative = minor < 0n
  const abs = negative ? -minor : minor
  const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  const fen = (abs % 100n).toString().padStart(2, '0')
  const symbol = !value.currency || value.currency === 'CNY' ? '¥' : `${value.currency} `
  return `${negative ? '-' : ''}${symbol}${whole}.${fen}`
}

export const yuan = (amountMinor, currency = 'CNY') => money({ amount_minor: amountMinor, currency })

const pad = (n) => String(n).padStart(2, '0')

export function date(value) {
  if (!value) return '—'
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return value
  const d = new Date(value)
  if (Number.isNaN(d.getTime())) return value
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
}

export function dateTime(value) {
  if (!value) return '—'
  const d = new Date(value)
  if (Number.isNaN(d.getTime())) return value
  return `${date(value)} ${pad(d.getHours())}:${pad(d.getMinutes())}`
}

// Whole days from now until a time (negative when past).
export function daysUntil(value) {
  if (!value) return null
  return Math.ceil((new Date(value).getTime() - Date.now()) / 86_400_000)
}

export const count = (n) => (n === undefined || n === null ? '—' : Number(n).toLocaleString('zh-CN'))

export const today = () => date(new Date().toISOString())

export const percent = (bps) => `${(Number(bps || 0) / 100).toFixed(2)}%`
